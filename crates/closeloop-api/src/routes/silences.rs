use super::prelude::*;

/// Check a silence before it is stored: the matcher compiles, the period is
/// sound, and someone owns it.
pub fn validate_silence(
    matcher: &str,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: &str,
    reason: &str,
) -> Result<(), String> {
    closeloop_core::cel::Matcher::compile(matcher).map_err(|e| format!("matcher: {e}"))?;
    if ends_at <= starts_at {
        return Err("ends_at: must be after starts_at".into());
    }
    if created_by.trim().is_empty() {
        return Err("created_by: must not be empty".into());
    }
    if reason.trim().is_empty() {
        return Err(
            "reason: must not be empty (say why, for whoever finds this silence later)".into(),
        );
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SilenceBody {
    /// A CEL condition, as in rules: `store == "LYON-02"`.
    matcher: String,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// Instead of ends_at: "2h", "3d".
    duration: Option<String>,
    /// Ignored with a token: the token's name is who created it.
    #[serde(default)]
    created_by: Option<String>,
    reason: String,
}

pub(crate) fn silence_json(s: &closeloop_store::SilenceView, now: DateTime<Utc>) -> Value {
    let mut value = serde_json::to_value(s).unwrap_or_default();
    value["state"] = json!(s.state(now));
    value
}

pub(crate) async fn create_silence(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(b): ApiJson<SilenceBody>,
) -> Result<Response, ApiError> {
    let created_by = caller
        .actor(b.created_by.as_deref())
        .map_err(|_| ApiError::BadRequest("created_by: required".into()))?;
    let now = state.clock.now();
    let starts_at = b.starts_at.unwrap_or(now);
    let ends_at = match (b.ends_at, &b.duration) {
        (Some(end), None) => end,
        (None, Some(duration)) => {
            let d = parse_duration(duration).map_err(ApiError::BadRequest)?;
            starts_at
                .checked_add_signed(d)
                .ok_or_else(|| ApiError::BadRequest("duration: ends after the year 9999".into()))?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of ends_at or duration".into(),
            ))
        }
    };
    validate_silence(&b.matcher, starts_at, ends_at, &created_by, &b.reason)
        .map_err(ApiError::BadRequest)?;
    let silence = state
        .store
        .create_silence(&b.matcher, starts_at, ends_at, &created_by, &b.reason, now)
        .await?;
    tracing::info!(silence = %silence.id, created_by = %silence.created_by, until = %silence.ends_at, "silence created");
    Ok((StatusCode::CREATED, Json(silence_json(&silence, now))).into_response())
}

/// "90m", "2h", "3d", "1w" into a duration.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("duration: \"{text}\" is not like 90m, 2h, 3d or 1w"))?;
    let d = match unit {
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => {
            return Err(format!(
                "duration: \"{text}\" is not like 90m, 2h, 3d or 1w"
            ))
        }
    };
    if n <= 0 {
        return Err("duration: must be positive".into());
    }
    // A silence longer than ten years is a typo; past it, times overflow.
    match d {
        Some(d) if d <= chrono::Duration::days(3650) => Ok(d),
        _ => Err("duration: must be at most 3650d (ten years)".into()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SilencesQuery {
    state: Option<String>,
}

pub(crate) async fn list_silences(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SilencesQuery>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    if let Some(s) = &q.state {
        if !matches!(s.as_str(), "pending" | "active" | "expired") {
            return Err(ApiError::BadRequest(format!(
                "state: must be one of pending, active, expired (got \"{s}\")"
            )));
        }
    }
    let silences: Vec<Value> = state
        .store
        .silences()
        .await?
        .iter()
        .filter(|s| q.state.as_deref().is_none_or(|want| s.state(now) == want))
        .map(|s| silence_json(s, now))
        .collect();
    Ok(Json(json!({"silences": silences})).into_response())
}

pub(crate) async fn expire_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::NotFound(format!("silence {id} not found")))?;
    let now = state.clock.now();
    let silence = state
        .store
        .expire_silence(id, now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("silence {id} not found")))?;
    tracing::info!(silence = %id, "silence expired");
    Ok(Json(silence_json(&silence, now)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn durations_and_silence_checks() {
        assert_eq!(
            parse_duration("90m").unwrap(),
            chrono::Duration::minutes(90)
        );
        assert_eq!(parse_duration("3d").unwrap(), chrono::Duration::days(3));
        for bad in ["", "2", "2y", "-1h", "0h", "h", "999999999999w", "3651d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        assert!(validate_silence(r#"store == "LYON-02""#, now, later, "ops", "outage").is_ok());
        let cases = [
            (
                r#"stor == "LYON-02""#,
                now,
                later,
                "ops",
                "outage",
                "matcher: line 1, column 1: unknown field `stor`",
            ),
            (
                r#"store == "LYON-02""#,
                later,
                now,
                "ops",
                "outage",
                "ends_at: must be after starts_at",
            ),
            (
                r#"store == "LYON-02""#,
                now,
                later,
                " ",
                "outage",
                "created_by",
            ),
            (r#"store == "LYON-02""#, now, later, "ops", "", "reason"),
        ];
        for (matcher, start, end, by, reason, expected) in cases {
            let err = validate_silence(matcher, start, end, by, reason).unwrap_err();
            assert!(err.contains(expected), "`{expected}` missing from `{err}`");
        }
    }
}
