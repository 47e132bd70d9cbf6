use closeloop_core::{Command, ContactOutcome};

use super::cases::VisibleCase;
use super::prelude::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActorNote {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContactBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    outcome: ContactOutcome,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResolveBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    root_cause: String,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReopenBody {
    /// Ignored with a token: the token's name is the actor.
    #[serde(default)]
    actor: Option<String>,
    reason: String,
}

/// What a step body becomes: the command and the actor it names.
trait StepBody: serde::de::DeserializeOwned {
    fn into_command(self) -> (Command, Option<String>);
}

impl StepBody for ContactBody {
    fn into_command(self) -> (Command, Option<String>) {
        let (outcome, note) = (self.outcome, self.note);
        (Command::RecordContact { outcome, note }, self.actor)
    }
}

impl StepBody for ResolveBody {
    fn into_command(self) -> (Command, Option<String>) {
        let (root_cause, note) = (self.root_cause, self.note);
        (Command::Resolve { root_cause, note }, self.actor)
    }
}

impl StepBody for ReopenBody {
    fn into_command(self) -> (Command, Option<String>) {
        (
            Command::Reopen {
                reason: self.reason,
            },
            self.actor,
        )
    }
}

type Step = fn(Value) -> Result<(Command, Option<String>), ApiError>;

/// A step whose body is an actor and a note.
fn noted(
    value: Value,
    make: fn(Option<String>) -> Command,
) -> Result<(Command, Option<String>), ApiError> {
    let body: ActorNote = input::from_value(value)?;
    Ok((make(body.note), body.actor))
}

fn typed<B: StepBody>(value: Value) -> Result<(Command, Option<String>), ApiError> {
    Ok(input::from_value::<B>(value)?.into_command())
}

/// Every step of a case that takes a short body, by the last segment of
/// its route: one table, one handler ([`case_step`]).
fn step_of(action: &str) -> Option<Step> {
    Some(match action {
        "acknowledge" => |v| noted(v, |note| Command::Acknowledge { note }),
        "notes" => |v| {
            noted(v, |note| Command::AddNote {
                note: note.unwrap_or_default(),
            })
        },
        "contact-attempts" => typed::<ContactBody>,
        "resolve" => typed::<ResolveBody>,
        "reopen" => typed::<ReopenBody>,
        "close" => |v| noted(v, |note| Command::Close { note }),
        "wait" => |v| noted(v, |note| Command::WaitOnCustomer { note }),
        "resume" => |v| noted(v, |note| Command::Resume { note }),
        _ => return None,
    })
}

/// `POST /v1/cases/{id}/{step}`: apply the step's command to a case the
/// caller may see (checked by the route layer), as the caller.
pub(crate) async fn case_step(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    VisibleCase(id): VisibleCase,
    route: axum::extract::MatchedPath,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let action = route.as_str().rsplit('/').next().unwrap_or_default();
    let step = step_of(action)
        .ok_or_else(|| ApiError::Internal(format!("no step is routed at {}", route.as_str())))?;
    let (command, actor) = step(body)?;
    let actor = caller.actor(actor.as_deref())?;
    let detail = state
        .store
        .apply_command(id, &command, &actor, state.clock.now(), &state.root_causes)
        .await?;
    tracing::info!(case = %id, action = command.action(), actor, status = %detail.case.status, "case updated");
    Ok(Json(crate::dto::CaseDetailBody::from(&detail)).into_response())
}
