//! Chart geometry for the dashboard's SVG, drawn by the templates (no
//! script, no outside host): horizontal bars for a figure per group, and a
//! trend line over periods. Pure: values in, coordinates out.

use serde::Serialize;

/// One bar of a bar chart, in a 0–100 wide drawing (percent of the width).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Bar {
    pub label: String,
    pub value: String,
    /// Where the bar starts and how wide it is, in % of the drawing.
    pub x: f64,
    pub width: f64,
    /// `bad` below zero (or below the midpoint), `good` above.
    pub tone: &'static str,
}

/// Bars of `values` on a scale from `min` to `max` (NPS: −100 to 100):
/// each bar grows from zero (or `min` when zero is outside the scale).
pub(crate) fn bars(values: &[(String, f64)], min: f64, max: f64) -> Vec<Bar> {
    let span = (max - min).max(f64::EPSILON);
    let origin = 0.0_f64.clamp(min, max);
    let pos = |v: f64| 100.0 * (v.clamp(min, max) - min) / span;
    values
        .iter()
        .map(|(label, value)| {
            let (a, b) = (pos(origin), pos(*value));
            Bar {
                label: label.clone(),
                value: format!("{value:.1}"),
                x: round(a.min(b)),
                width: round((a - b).abs()),
                tone: if *value < origin { "bad" } else { "good" },
            }
        })
        .collect()
}

/// A trend line: the points of an SVG `polyline` in a 100 × 40 drawing
/// (higher values higher up), and the labels of its ends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Trend {
    pub points: String,
    pub first: String,
    pub last: String,
}

pub(crate) fn trend(values: &[(String, f64)], min: f64, max: f64) -> Option<Trend> {
    if values.len() < 2 {
        return None;
    }
    let span = (max - min).max(f64::EPSILON);
    let step = 100.0 / (values.len() - 1) as f64;
    let points = values
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let y = 40.0 - 40.0 * (v.clamp(min, max) - min) / span;
            format!("{},{}", round(i as f64 * step), round(y))
        })
        .collect::<Vec<_>>()
        .join(" ");
    Some(Trend {
        points,
        first: values[0].0.clone(),
        last: values[values.len() - 1].0.clone(),
    })
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_grow_from_zero() {
        let values = vec![
            ("A".to_owned(), 50.0),
            ("B".to_owned(), -25.0),
            ("C".to_owned(), 0.0),
        ];
        let drawn = bars(&values, -100.0, 100.0);
        assert_eq!(
            (drawn[0].x, drawn[0].width, drawn[0].tone),
            (50.0, 25.0, "good")
        );
        assert_eq!(
            (drawn[1].x, drawn[1].width, drawn[1].tone),
            (37.5, 12.5, "bad")
        );
        assert_eq!((drawn[2].x, drawn[2].width), (50.0, 0.0));
        assert_eq!(drawn[1].value, "-25.0");
        // A scale without zero (CES 1–7): bars from the minimum.
        let ces = bars(&[("A".to_owned(), 4.0)], 1.0, 7.0);
        assert_eq!((ces[0].x, ces[0].width), (0.0, 50.0));
    }

    #[test]
    fn trends_span_the_drawing() {
        let values = vec![
            ("W1".to_owned(), -100.0),
            ("W2".to_owned(), 0.0),
            ("W3".to_owned(), 100.0),
        ];
        let line = trend(&values, -100.0, 100.0).unwrap();
        assert_eq!(line.points, "0,40 50,20 100,0");
        assert_eq!((line.first.as_str(), line.last.as_str()), ("W1", "W3"));
        assert!(trend(&values[..1], -100.0, 100.0).is_none());
    }
}
