//! Realistic feedback events (`docs/feedback-event-v1.md`), seeded and
//! deterministic: the same options give the same bytes, on every machine
//! (the RNG is `StdRng`, pinned by `Cargo.lock`).
//!
//! What the stream looks like, as survey programmes see it:
//! - about one answer in five from a detractor, three in ten passives, half
//!   promoters, some stores worse than others;
//! - NPS on most answers, CES after support, returns, billing and website
//!   journeys, CSAT on a third;
//! - French and English comments about delivery, stock, staff, price,
//!   billing, website, returns and installation, a few with churn or legal
//!   threats, typed as people type (capitals, missing accents, no-break
//!   spaces before `!` and `?`);
//! - repeat customers, whose later answer often follows a call-back (the
//!   recovery loop);
//! - events in time order over the period, ending at `base`.
//!
//! [`invalid_corpus`] makes the lines every intake must refuse.
//!
//! Architecture invariant: no I/O; the caller writes the lines.

mod invalid;
mod vocab;

use chrono::{DateTime, Duration, FixedOffset};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

pub use invalid::invalid_corpus;
use vocab::Theme;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub count: usize,
    pub seed: u64,
    /// The newest answer's time; the others go back `days` from it.
    pub base: DateTime<FixedOffset>,
    pub days: u32,
    /// Event ids are `resp-{tag}-{index:07}`; default `s{seed}`.
    pub tag: Option<String>,
    /// Share of answers from a customer who answered before (0.3 by
    /// default). 0: every answer from a new customer, so each alert opens
    /// its own case (no coalescing, no recovery): what an exact accounting
    /// of cases per alert needs.
    pub repeat_rate: f64,
}

impl Options {
    pub fn new(count: usize, seed: u64) -> Self {
        Options {
            count,
            seed,
            base: DateTime::parse_from_rfc3339("2026-11-20T12:00:00+01:00").unwrap(),
            days: 30,
            tag: None,
            repeat_rate: 0.3,
        }
    }
}

/// A customer who may answer again.
#[derive(Debug, Clone)]
struct Customer {
    id: String,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    locale: &'static str,
    segment: &'static str,
    region: usize,
    store: &'static str,
    /// Their last NPS, if any: a detractor's next answer follows a call-back.
    last_nps: Option<u8>,
}

/// The generator: an iterator of events as JSON values.
#[derive(Debug)]
pub struct Generator {
    options: Options,
    rng: StdRng,
    index: usize,
    customers: Vec<Customer>,
    /// Per store, how much worse than average it serves (0..=2).
    store_penalty: Vec<(&'static str, u8)>,
}

impl Generator {
    pub fn new(options: Options) -> Self {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let store_penalty = vocab::REGIONS
            .iter()
            .flat_map(|(_, _, stores)| stores.iter())
            .map(|store| (*store, [0, 0, 0, 1, 1, 2][rng.gen_range(0..6)]))
            .collect();
        Generator {
            options,
            rng,
            index: 0,
            customers: Vec::new(),
            store_penalty,
        }
    }

    fn penalty(&self, store: &str) -> u8 {
        self.store_penalty
            .iter()
            .find(|(s, _)| *s == store)
            .map_or(0, |(_, p)| *p)
    }

    fn weighted(&mut self, items: &[(&'static str, u32)]) -> &'static str {
        let total: u32 = items.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.gen_range(0..total);
        for (item, weight) in items {
            if pick < *weight {
                return item;
            }
            pick -= weight;
        }
        items[items.len() - 1].0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())]
    }

    fn new_customer(&mut self) -> Customer {
        let region = self.rng.gen_range(0..vocab::REGIONS.len());
        let (_, country, stores) = vocab::REGIONS[region];
        let store = self.pick(stores);
        let french = match country {
            "FR" => self.rng.gen_bool(0.85),
            "BE" => self.rng.gen_bool(0.7),
            _ => self.rng.gen_bool(0.8),
        };
        let locale = match (french, country) {
            (true, "BE") => "fr-BE",
            (true, "CH") => "fr-CH",
            (true, _) => "fr-FR",
            (false, _) => "en-GB",
        };
        let name = format!(
            "{} {}",
            self.pick(vocab::FIRST_NAMES),
            self.pick(vocab::LAST_NAMES)
        );
        let email = self
            .rng
            .gen_bool(0.9)
            .then(|| format!("{}@example.org", ascii_handle(&name)));
        let phone = self.rng.gen_bool(0.35).then(|| {
            let prefix = match country {
                "BE" => "+32 470",
                "CH" => "+41 79",
                _ => "+33 6",
            };
            format!(
                "{prefix} {:02} {:02} {:02} {:02}",
                self.rng.gen_range(10..100),
                self.rng.gen_range(10..100),
                self.rng.gen_range(10..100),
                self.rng.gen_range(10..100)
            )
        });
        // Ids are unique (a collision would merge two people's answers) and
        // look random: the customer's rank through a bijection of 0..900000.
        let rank = self.customers.len() as u64;
        let id = if rank < 900_000 {
            let offset = self.options.seed % 900_000;
            format!("C-{:06}", 100_000 + (rank * 48_271 + offset) % 900_000)
        } else {
            format!("C-{rank}")
        };
        Customer {
            id,
            name,
            email,
            phone,
            locale,
            segment: self.weighted(vocab::SEGMENTS),
            region,
            store,
            last_nps: None,
        }
    }

    /// NPS for a customer at a store; after a detractor answer, the next
    /// one follows a call-back and is often better.
    fn nps(&mut self, penalty: u8, last: Option<u8>) -> u8 {
        if last.is_some_and(|n| n <= 6) && self.rng.gen_bool(0.55) {
            return self.rng.gen_range(9..=10);
        }
        let x: f64 = self.rng.gen();
        let detractor = 0.14 + 0.06 * f64::from(penalty);
        if x < detractor {
            self.rng.gen_range(0..=6)
        } else if x < detractor + 0.3 {
            self.rng.gen_range(7..=8)
        } else {
            self.rng.gen_range(9..=10)
        }
    }

    fn comment(&mut self, band: Band, theme: Theme, french: bool) -> Option<String> {
        let (chance, pool): (f64, &[&str]) = match band {
            Band::Negative => (0.85, vocab::complaints(theme, french)),
            Band::Neutral => (0.45, vocab::neutral(french)),
            Band::Positive => (0.4, vocab::praise(theme, french)),
        };
        if !self.rng.gen_bool(chance) {
            return None;
        }
        let mut text = self
            .pick(pool)
            .replace("{d}", &self.rng.gen_range(2..10).to_string());
        if band == Band::Negative && self.rng.gen_bool(0.07) {
            text.push(' ');
            text.push_str(self.pick(vocab::threats(french)));
        }
        Some(self.typed(text, french))
    }

    /// The way people type: capitals, missing accents, French spacing.
    fn typed(&mut self, text: String, french: bool) -> String {
        let roll: f64 = self.rng.gen();
        let text = if roll < 0.06 {
            text.to_uppercase()
        } else if roll < 0.14 {
            strip_accents(&text)
        } else if roll < 0.2 {
            text.to_lowercase()
        } else {
            text
        };
        if french && self.rng.gen_bool(0.2) {
            // A no-break space before ! and ?, as French keyboards type it.
            text.replace(" !", "\u{a0}!").replace(" ?", "\u{a0}?")
        } else {
            text
        }
    }

    fn event(&mut self) -> Value {
        let i = self.index;
        self.index += 1;
        let returning = !self.customers.is_empty()
            && self.rng.gen_bool(self.options.repeat_rate.clamp(0.0, 1.0));
        let slot = if returning {
            self.rng.gen_range(0..self.customers.len())
        } else {
            let customer = self.new_customer();
            self.customers.push(customer);
            self.customers.len() - 1
        };
        let customer = self.customers[slot].clone();
        let (region, country, _) = vocab::REGIONS[customer.region];
        let touchpoint = self.weighted(vocab::TOUCHPOINTS);
        let french = customer.locale.starts_with("fr");
        let penalty = self.penalty(customer.store);

        let mut scores = Map::new();
        let nps = self.nps(penalty, customer.last_nps);
        let band = Band::of(nps);
        let asks_ces = matches!(
            touchpoint,
            "support_call" | "returns" | "billing" | "website"
        );
        if self.rng.gen_bool(if asks_ces { 0.7 } else { 0.92 }) {
            scores.insert("nps".into(), json!(nps));
            self.customers[slot].last_nps = Some(nps);
        }
        if (asks_ces && self.rng.gen_bool(0.8)) || scores.is_empty() {
            let centre: i32 = match band {
                Band::Negative => 2,
                Band::Neutral => 4,
                Band::Positive => 6,
            };
            let ces = (centre + self.pick(&[-1, 0, 0, 1])).clamp(1, 7);
            scores.insert("ces".into(), json!(ces));
        }
        if self.rng.gen_bool(0.33) {
            let centre: i32 = match band {
                Band::Negative => 2,
                Band::Neutral => 3,
                Band::Positive => 5,
            };
            let csat = (centre + self.pick(&[-1, 0, 0, 1])).clamp(1, 5);
            scores.insert("csat".into(), json!(csat));
        }

        let theme = self.pick(vocab::themes_for(touchpoint));
        let comment = self.comment(band, theme, french);
        let mut person = Map::new();
        person.insert("id".into(), json!(customer.id));
        if self.rng.gen_bool(0.96) {
            person.insert("name".into(), json!(customer.name));
        }
        if let Some(email) = &customer.email {
            person.insert("email".into(), json!(email));
        }
        if let Some(phone) = &customer.phone {
            person.insert("phone".into(), json!(phone));
        }
        person.insert("locale".into(), json!(customer.locale));
        person.insert("segment".into(), json!(customer.segment));

        let mut journey = Map::new();
        journey.insert("touchpoint".into(), json!(touchpoint));
        if self.rng.gen_bool(0.92) {
            let channel = match touchpoint {
                "support_call" => "call_center",
                "website" => self.pick(&["web", "app"]),
                _ => self.weighted(vocab::CHANNELS),
            };
            journey.insert("channel".into(), json!(channel));
        }

        let mut attributes = Map::new();
        if matches!(
            touchpoint,
            "purchase" | "delivery" | "returns" | "installation" | "billing"
        ) {
            attributes.insert(
                "order_id".into(),
                json!(format!("CMD-{:05}", self.rng.gen_range(10000..100000))),
            );
        }
        if touchpoint == "delivery" {
            attributes.insert(
                "carrier".into(),
                json!(self.pick(&["XPO", "GEODIS", "COLISSIMO", "DPD"])),
            );
        }
        if touchpoint == "support_call" {
            attributes.insert(
                "agent_id".into(),
                json!(format!("AG-{:03}", self.rng.gen_range(1..60))),
            );
        }

        let mut event = Map::new();
        let tag = self
            .options
            .tag
            .clone()
            .unwrap_or_else(|| format!("s{}", self.options.seed));
        event.insert("event_id".into(), json!(format!("resp-{tag}-{i:07}")));
        event.insert("occurred_at".into(), json!(self.occurred_at(i)));
        event.insert("source".into(), json!(vocab::source_for(touchpoint)));
        event.insert("customer".into(), Value::Object(person));
        event.insert("journey".into(), Value::Object(journey));
        event.insert(
            "location".into(),
            json!({"store_id": customer.store, "region": region, "country": country}),
        );
        event.insert(
            "product_line".into(),
            json!(self.pick(vocab::PRODUCT_LINES)),
        );
        event.insert("scores".into(), Value::Object(scores));
        if let Some(comment) = comment {
            event.insert("comment".into(), json!(comment));
        }
        if !attributes.is_empty() {
            event.insert("attributes".into(), Value::Object(attributes));
        }
        Value::Object(event)
    }

    /// In time order over the period, with some jitter; whole seconds.
    fn occurred_at(&mut self, i: usize) -> String {
        let span = i64::from(self.options.days) * 86_400;
        let count = self.options.count.max(1) as i64;
        let step = span / count;
        let jitter = if step > 0 {
            self.rng.gen_range(0..step)
        } else {
            0
        };
        let back = span - (i as i64) * step - jitter;
        (self.options.base - Duration::seconds(back.max(0))).to_rfc3339()
    }
}

impl Iterator for Generator {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        (self.index < self.options.count).then(|| self.event())
    }
}

/// One line of JSON per event, as `closeloop generate` prints them.
pub fn lines(options: Options) -> impl Iterator<Item = String> {
    Generator::new(options).map(|event| event.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Band {
    Negative,
    Neutral,
    Positive,
}

impl Band {
    fn of(nps: u8) -> Band {
        match nps {
            0..=6 => Band::Negative,
            7..=8 => Band::Neutral,
            _ => Band::Positive,
        }
    }
}

fn strip_accents(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            other => other,
        })
        .collect()
}

fn ascii_handle(name: &str) -> String {
    strip_accents(&name.to_lowercase()).replace(' ', ".")
}

#[cfg(test)]
mod tests;
