//! Values of the CLI's options and the HTTP API's query strings, parsed
//! once for both: a flow state (`--state`, `?state=`) and a point in time
//! (`--since`, `?since=`).

use quai_spool::FlowState;

/// A flow state by its name, case-insensitive (the spool's one list of
/// names, [`FlowState`]'s `FromStr`).
pub fn parse_state(s: &str) -> anyhow::Result<FlowState> {
    Ok(s.parse::<FlowState>()?)
}

/// `2026-11-28`, an RFC 3339 time, or a duration back from now: `2h`, `3d`.
pub fn parse_since(s: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, TimeZone, Utc};
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("{s:?} is not a date, a time or a duration like 2h"))?;
    let per: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => anyhow::bail!("{s:?}: unit must be s, m, h or d"),
    };
    // Every step checked: `99999999999999d` is an error, never an overflow.
    let too_far = || anyhow::anyhow!("{s:?} reaches too far back");
    let secs = n.checked_mul(per).ok_or_else(too_far)?;
    let back = chrono::TimeDelta::try_seconds(secs).ok_or_else(too_far)?;
    Utc::now().checked_sub_signed(back).ok_or_else(too_far)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_values_never_overflow() {
        assert!(parse_since("2h").is_ok());
        assert!(parse_since("2026-11-28").is_ok());
        for bad in [
            "99999999999999d",
            "9223372036854775807s",
            "9223372036854775808s",
            "106751991167300d",
            "3000000000000h",
            "",
            "d",
            "-1d",
            "1w",
            "1 d",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
