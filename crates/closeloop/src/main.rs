//! The `closeloop` binary: the composition root. It reads configuration,
//! builds the adapters around the pure core, and runs the service or one of
//! the offline commands.

mod cli;
mod clock;
mod intake;
mod pipeline;
mod reload;
mod reports;
mod rules_cmd;
mod scheduler;
mod serve;
mod settings;
mod shutdown;
mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "closeloop",
    version,
    about = "Closed-loop alerting for customer feedback"
)]
struct Cli {
    /// Configuration file; `CLOSELOOP__SECTION__KEY` variables override it.
    #[arg(
        long,
        global = true,
        env = "CLOSELOOP_CONFIG",
        default_value = "config/closeloop.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the service: intake (single-node or Kafka), dispatcher, SLA
    /// scheduler and HTTP API.
    Serve,
    /// Check a configuration and print the effective settings, secrets masked.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Check or try rules offline.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Inspect and replay notifications.
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Mute matching alerts for a while (they are still recorded).
    Silences {
        #[command(subcommand)]
        command: SilencesCommand,
    },
    /// Web app sessions: end every session of a person.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// API tokens: create (shown once), list, revoke.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Print realistic feedback events as JSON lines (seeded, deterministic),
    /// or with --invalid the lines every intake must refuse.
    Generate {
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Days the events span, ending at --base.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// The newest event's time (RFC 3339).
        #[arg(long, default_value = "2026-11-20T12:00:00+01:00")]
        base: chrono::DateTime<chrono::FixedOffset>,
        /// Event ids are resp-TAG-0000001 (default: s<seed>).
        #[arg(long)]
        tag: Option<String>,
        /// Share of answers from returning customers (0 to 1).
        #[arg(long, default_value_t = 0.3)]
        repeat_rate: f64,
        /// The invalid corpus instead of events.
        #[arg(long)]
        invalid: bool,
    },
    /// Store a JSON-lines file of events: through the intake path in
    /// single-node mode, or published to the intake topic (keyed by customer
    /// id) in Kafka mode.
    Publish {
        file: PathBuf,
        /// Topic (default: kafka.topic from the configuration).
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate FILE (default: --config) with the environment's overrides.
    Check { file: Option<PathBuf> },
}

#[derive(Debug, Subcommand)]
pub enum SilencesCommand {
    /// Create a silence: a CEL matcher, a period, who and why.
    Create {
        /// e.g. 'store == "LYON-02"'
        #[arg(long)]
        matcher: String,
        /// How long: 90m, 2h, 3d, 1w.
        #[arg(long)]
        duration: String,
        /// When it starts (RFC 3339); now by default.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long = "by")]
        created_by: String,
        #[arg(long)]
        reason: String,
    },
    /// List silences, expired ones included.
    List,
    /// End a silence now.
    Expire { id: uuid::Uuid },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (only its hash is stored).
    Create {
        /// Who uses it: recorded as the actor of their case actions.
        #[arg(long)]
        name: String,
        /// admin, ops or manager.
        #[arg(long)]
        role: String,
        /// For a manager: their owner id in the owner directory (their scope).
        #[arg(long)]
        owner: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token: it stops working at once.
    Revoke { id: uuid::Uuid },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Sign a person out everywhere (a lost phone, someone who left).
    Revoke {
        /// Their owner id in the owner directory.
        #[arg(long)]
        owner: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        /// pending, sent or dead.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Put dead deliveries back in the queue: by id, by case, or by creation time.
    Replay {
        #[arg(long = "id")]
        ids: Vec<uuid::Uuid>,
        #[arg(long = "case")]
        case_id: Option<uuid::Uuid>,
        /// RFC 3339, with --to.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Validate a rules file (and, with --owners, the owners it names).
    Check {
        file: PathBuf,
        #[arg(long)]
        owners: Option<PathBuf>,
    },
    /// Print one JSON decision line per event line, touching no database or broker.
    Test {
        #[arg(long)]
        rules: PathBuf,
        #[arg(long)]
        owners: PathBuf,
        #[arg(long)]
        events: PathBuf,
        /// Expectations file: the decisions events must get; exits non-zero
        /// and prints the differences on a mismatch.
        #[arg(long)]
        expect: Option<PathBuf>,
    },
    /// Replay history through NEW rules: load per rule and per owner, and
    /// (with --against) the events whose decision changes.
    Simulate {
        #[arg(long)]
        rules: PathBuf,
        #[arg(long)]
        owners: PathBuf,
        #[arg(long)]
        events: PathBuf,
        /// The rules in production, to compare with.
        #[arg(long)]
        against: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Commands::Rules { command } => run_rules(command),
        Commands::Serve => runtime().and_then(|rt| rt.block_on(serve::serve(&cli.config))),
        Commands::Config {
            command: ConfigCommand::Check { file },
        } => cli::config_check(file.as_deref().unwrap_or(&cli.config)),
        Commands::Migrate => runtime().and_then(|rt| rt.block_on(cli::migrate(&cli.config))),
        Commands::Silences { command } => {
            runtime().and_then(|rt| rt.block_on(cli::silences(&cli.config, command)))
        }
        Commands::Deliveries { command } => {
            runtime().and_then(|rt| rt.block_on(cli::deliveries(&cli.config, command)))
        }
        Commands::Sessions { command } => {
            runtime().and_then(|rt| rt.block_on(cli::sessions(&cli.config, command)))
        }
        Commands::Tokens { command } => {
            runtime().and_then(|rt| rt.block_on(cli::tokens(&cli.config, command)))
        }
        Commands::Generate {
            count,
            seed,
            days,
            base,
            tag,
            repeat_rate,
            invalid,
        } => generate(
            closeloop_gen::Options {
                count,
                seed,
                base,
                days,
                tag,
                repeat_rate,
            },
            invalid,
        ),
        Commands::Publish { file, topic } => {
            runtime().and_then(|rt| rt.block_on(cli::publish(&cli.config, &file, topic)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn generate(options: closeloop_gen::Options, invalid: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if invalid {
        for line in closeloop_gen::invalid_corpus(options.seed) {
            writeln!(out, "{line}")?;
        }
    } else {
        for line in closeloop_gen::lines(options) {
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run_rules(command: RulesCommand) -> anyhow::Result<()> {
    match command {
        RulesCommand::Check { file, owners } => {
            println!("{}", rules_cmd::check(&file, owners.as_deref())?);
        }
        RulesCommand::Test {
            rules,
            owners,
            events,
            expect: None,
        } => {
            let policy = rules_cmd::load_policy(&rules, &owners)?;
            let stdout = std::io::stdout();
            rules_cmd::test(
                &policy,
                &events,
                &mut std::io::BufWriter::new(stdout.lock()),
            )?;
        }
        RulesCommand::Test {
            rules,
            owners,
            events,
            expect: Some(expect),
        } => {
            let policy = rules_cmd::load_policy(&rules, &owners)?;
            let decisions = rules_cmd::decide_file(&policy, &events)?;
            let (report, passed) = rules_cmd::check_expectations(&expect, &decisions)?;
            print!("{report}");
            if !passed {
                anyhow::bail!("rules do not meet the expectations in {}", expect.display());
            }
        }
        RulesCommand::Simulate {
            rules,
            owners,
            events,
            against,
            json,
        } => {
            let new = rules_cmd::load_policy(&rules, &owners)?;
            let old = against
                .map(|old| rules_cmd::load_policy(&old, &owners))
                .transpose()?;
            print!(
                "{}",
                rules_cmd::simulate(&new, old.as_ref(), &events, json)?
            );
        }
    }
    Ok(())
}
