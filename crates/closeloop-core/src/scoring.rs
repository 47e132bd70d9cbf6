//! The standard classifications of the feedback contract.
//!
//! NPS 0–6 detractor, 7–8 passive, 9–10 promoter; CSAT 1–2 dissatisfied,
//! 3 neutral, 4–5 satisfied; CES 1–3 high effort, 4 neutral, 5–7 low effort.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::event::{Ces, Csat, Nps};

/// Where an NPS answer falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NpsClass {
    Detractor,
    Passive,
    Promoter,
}

/// Where a CSAT answer falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsatClass {
    Dissatisfied,
    Neutral,
    Satisfied,
}

/// Where a CES answer falls. High effort (1–3) is the bad end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CesClass {
    HighEffort,
    Neutral,
    LowEffort,
}

impl NpsClass {
    pub fn as_str(self) -> &'static str {
        match self {
            NpsClass::Detractor => "detractor",
            NpsClass::Passive => "passive",
            NpsClass::Promoter => "promoter",
        }
    }

    pub const ALL: [NpsClass; 3] = [NpsClass::Detractor, NpsClass::Passive, NpsClass::Promoter];

    /// The scores of this class: the one definition, also used to count
    /// classes in the database.
    pub fn values(self) -> RangeInclusive<u8> {
        match self {
            NpsClass::Detractor => 0..=6,
            NpsClass::Passive => 7..=8,
            NpsClass::Promoter => 9..=10,
        }
    }
}

impl CsatClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CsatClass::Dissatisfied => "dissatisfied",
            CsatClass::Neutral => "neutral",
            CsatClass::Satisfied => "satisfied",
        }
    }

    pub const ALL: [CsatClass; 3] = [
        CsatClass::Dissatisfied,
        CsatClass::Neutral,
        CsatClass::Satisfied,
    ];

    /// The scores of this class.
    pub fn values(self) -> RangeInclusive<u8> {
        match self {
            CsatClass::Dissatisfied => 1..=2,
            CsatClass::Neutral => 3..=3,
            CsatClass::Satisfied => 4..=5,
        }
    }
}

impl CesClass {
    pub fn as_str(self) -> &'static str {
        match self {
            CesClass::HighEffort => "high_effort",
            CesClass::Neutral => "neutral",
            CesClass::LowEffort => "low_effort",
        }
    }

    pub const ALL: [CesClass; 3] = [CesClass::HighEffort, CesClass::Neutral, CesClass::LowEffort];

    /// The scores of this class.
    pub fn values(self) -> RangeInclusive<u8> {
        match self {
            CesClass::HighEffort => 1..=3,
            CesClass::Neutral => 4..=4,
            CesClass::LowEffort => 5..=7,
        }
    }
}

impl Nps {
    /// The standard NPS classification.
    pub fn class(self) -> NpsClass {
        let v = self.value();
        NpsClass::ALL
            .into_iter()
            .find(|c| c.values().contains(&v))
            .unwrap_or(NpsClass::Promoter)
    }
}

impl Csat {
    /// The standard CSAT classification.
    pub fn class(self) -> CsatClass {
        let v = self.value();
        CsatClass::ALL
            .into_iter()
            .find(|c| c.values().contains(&v))
            .unwrap_or(CsatClass::Satisfied)
    }
}

impl Ces {
    /// The standard CES 2.0 classification.
    pub fn class(self) -> CesClass {
        let v = self.value();
        CesClass::ALL
            .into_iter()
            .find(|c| c.values().contains(&v))
            .unwrap_or(CesClass::LowEffort)
    }
}

impl crate::event::Scores {
    /// Whether this answer shows a customer won back, for the recovery loop:
    /// an NPS promoter; without NPS, a satisfied CSAT; with neither, a
    /// low-effort CES. The headline score decides: a promoter NPS with a
    /// poor CSAT is still a promoter.
    pub fn is_recovery(&self) -> bool {
        if let Some(nps) = self.nps {
            return nps.class() == NpsClass::Promoter;
        }
        if let Some(csat) = self.csat {
            return csat.class() == CsatClass::Satisfied;
        }
        self.ces
            .is_some_and(|ces| ces.class() == CesClass::LowEffort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_table() {
        use crate::event::Scores;
        // (nps, csat, ces, recovered?)
        let table = [
            (Some(9), None, None, true),
            (Some(10), Some(1), None, true),
            (Some(8), Some(5), Some(7), false),
            (Some(3), None, None, false),
            (None, Some(4), None, true),
            (None, Some(3), Some(7), false),
            (None, None, Some(5), true),
            (None, None, Some(4), false),
            (None, None, None, false),
        ];
        for (nps, csat, ces, expected) in table {
            let scores: Scores = serde_json::from_value(serde_json::json!({
                "nps": nps, "csat": csat, "ces": ces,
            }))
            .unwrap();
            assert_eq!(scores.is_recovery(), expected, "{nps:?} {csat:?} {ces:?}");
        }
    }

    #[test]
    fn classifications_follow_the_contract() {
        let nps: Vec<_> = (0..=10).map(|v| Nps::new(v).unwrap().class()).collect();
        assert_eq!(nps[..7], [NpsClass::Detractor; 7]);
        assert_eq!(nps[7..9], [NpsClass::Passive; 2]);
        assert_eq!(nps[9..], [NpsClass::Promoter; 2]);

        let csat: Vec<_> = (1..=5).map(|v| Csat::new(v).unwrap().class()).collect();
        use CsatClass::*;
        assert_eq!(
            csat,
            [Dissatisfied, Dissatisfied, Neutral, Satisfied, Satisfied]
        );

        let ces: Vec<_> = (1..=7).map(|v| Ces::new(v).unwrap().class()).collect();
        assert_eq!(ces[..3], [CesClass::HighEffort; 3]);
        assert_eq!(ces[3], CesClass::Neutral);
        assert_eq!(ces[4..], [CesClass::LowEffort; 3]);
    }

    #[test]
    fn scales_refuse_out_of_range() {
        assert!(Nps::new(11).is_none());
        assert!(Csat::new(0).is_none() && Csat::new(6).is_none());
        assert!(Ces::new(0).is_none() && Ces::new(8).is_none());
    }
}
