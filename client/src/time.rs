//! Time arguments: RFC 3339 (`2026-11-23T08:00:00Z`, `2026-11-23T16:00:00+08:00`),
//! `now`, and offsets from now (`-10m`, `now-2h`, `-1d`, `-30s`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parses a time argument into milliseconds since the epoch.
pub fn parse_time_ms(s: &str, now_ms: i64) -> Result<i64, String> {
    let t = s.trim();
    if t == "now" {
        return Ok(now_ms);
    }
    let rel = t.strip_prefix("now").unwrap_or(t);
    if let Some(rest) = rel.strip_prefix('-') {
        let (num, unit) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len()));
        let n: i64 = num.parse().map_err(|_| bad(s))?;
        let ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad(s)),
        };
        return Ok(now_ms - n * ms);
    }
    let dt = OffsetDateTime::parse(t, &Rfc3339).map_err(|_| bad(s))?;
    Ok((dt.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn bad(s: &str) -> String {
    format!("{s:?} is not a time: use RFC 3339 (2026-11-23T08:00:00Z), `now`, or an offset like -10m, -2h, -1d")
}

/// Formats milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Current time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_users_type() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time_ms("now", now).unwrap(), now);
        assert_eq!(parse_time_ms("-10m", now).unwrap(), now - 600_000);
        assert_eq!(parse_time_ms("now-2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time_ms("2023-11-14T22:13:20Z", 0).unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time_ms("2023-11-15T06:13:20+08:00", 0).unwrap(), 1_700_000_000_000);
        assert!(parse_time_ms("yesterday", now).unwrap_err().contains("RFC 3339"));
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
