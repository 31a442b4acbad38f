//! Date formatting with moment.js format strings (English locale) in an IANA time zone, as
//! upstream's `{{date 'YYYYMMDD' tz='Europe/Paris'}}` does.
//!
//! It owns the token grammar (ordered alternatives like moment's, `[literal]` brackets, `\X`
//! escapes, `L`/`LL`… long formats) and the English names, ordinals and locale weeks. It must not
//! read the clock: callers pass the instant.
//!
//! See: <https://momentjs.com/docs/#/displaying/format/>

use std::sync::OnceLock;

use chrono::{DateTime, Datelike, FixedOffset, Offset, TimeZone, Timelike, Utc};
use chrono_tz::{OffsetName, Tz};
use regex::Regex;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Parses an IANA zone name (`UTC`, `Europe/Paris`), case-insensitively like moment-timezone.
pub fn zone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok().or_else(|| {
        chrono_tz::TZ_VARIANTS
            .iter()
            .find(|z| z.name().eq_ignore_ascii_case(name))
            .copied()
    })
}

fn token_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        #[allow(clippy::expect_used)]
        Regex::new(
            r"(?s)(\[[^\[]*\])|(\\)?([Hh]mm(?:ss)?|Mo|MM?M?M?|Do|DDDo|DD?D?D?|ddd?d?|do?|w[o|w]?|W[o|W]?|Qo?|N{1,5}|YYYYYY|YYYYY|YYYY|YY|y{2,4}|yo?|gg(?:ggg?)?|GG(?:GGG?)?|e|E|a|A|hh?|HH?|kk?|mm?|ss?|S{1,9}|x|X|zz?|ZZ?|.)",
        )
        .expect("static regex")
    })
}

fn long_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    #[allow(clippy::expect_used)]
    RE.get_or_init(|| {
        Regex::new(r"(\[[^\[]*\])|(\\)?(LTS|LT|LL?L?L?|l{1,4})").expect("static regex")
    })
}

fn expand_long(format: &str) -> String {
    let mut out = format.to_string();
    for _ in 0..5 {
        let next = long_re()
            .replace_all(&out, |c: &regex::Captures<'_>| {
                if c.get(1).is_some() || c.get(2).is_some() {
                    return c[0].to_string();
                }
                match &c[3] {
                    "LTS" => "h:mm:ss A",
                    "LT" => "h:mm A",
                    "L" => "MM/DD/YYYY",
                    "LL" => "MMMM D, YYYY",
                    "LLL" => "MMMM D, YYYY h:mm A",
                    "LLLL" => "dddd, MMMM D, YYYY h:mm A",
                    "l" => "M/D/YYYY",
                    "ll" => "MMM D, YYYY",
                    "lll" => "MMM D, YYYY h:mm A",
                    _ => "ddd, MMM D, YYYY h:mm A",
                }
                .to_string()
            })
            .into_owned();
        if next == out {
            break;
        }
        out = next;
    }
    out
}

fn ordinal(n: i64) -> String {
    let b = n % 10;
    let suffix = if (n % 100) / 10 == 1 {
        "th"
    } else {
        match b {
            1 => "st",
            2 => "nd",
            3 => "rd",
            _ => "th",
        }
    };
    format!("{n}{suffix}")
}

fn pad(n: i64, width: usize) -> String {
    let s = format!("{:0width$}", n.abs());
    if n < 0 { format!("-{s}") } else { s }
}

fn days_in_year(y: i32) -> i64 {
    if chrono::NaiveDate::from_ymd_opt(y, 2, 29).is_some() {
        366
    } else {
        365
    }
}

fn first_week_offset(year: i32, dow: i64, doy: i64) -> i64 {
    let fwd = 7 + dow - doy;
    let wd = chrono::NaiveDate::from_ymd_opt(year, 1, fwd as u32)
        .map(|d| d.weekday().num_days_from_sunday() as i64)
        .unwrap_or(0);
    let fwdlw = (7 + wd - dow) % 7;
    -fwdlw + fwd - 1
}

fn weeks_in_year(year: i32, dow: i64, doy: i64) -> i64 {
    (days_in_year(year) - first_week_offset(year, dow, doy) + first_week_offset(year + 1, dow, doy))
        / 7
}

/// (week, week-year) with moment's algorithm; en locale: dow 0, doy 6; ISO: dow 1, doy 4.
fn week_of_year<T: Datelike>(d: &T, dow: i64, doy: i64) -> (i64, i32) {
    let off = first_week_offset(d.year(), dow, doy);
    let week = (d.ordinal() as i64 - off - 1).div_euclid(7) + 1;
    if week < 1 {
        let y = d.year() - 1;
        (week + weeks_in_year(y, dow, doy), y)
    } else if week > weeks_in_year(d.year(), dow, doy) {
        (week - weeks_in_year(d.year(), dow, doy), d.year() + 1)
    } else {
        (week, d.year())
    }
}

fn offset_str(secs: i32, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    let (h, m) = (a / 3600, (a % 3600) / 60);
    if colon {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}{m:02}")
    }
}

/// Formats `instant` in `tz` with a moment format. `None` as format means moment's default
/// (`YYYY-MM-DDTHH:mm:ss[Z]` when the zone's offset is zero, else `YYYY-MM-DDTHH:mm:ssZ`).
pub fn format(instant: DateTime<Utc>, tz: Tz, fmt: Option<&str>) -> String {
    let local = instant.with_timezone(&tz);
    let offset = local.offset().fix().local_minus_utc();
    let abbr = local
        .offset()
        .abbreviation()
        .map(str::to_string)
        .unwrap_or_else(|| offset_str(offset, true));
    let fixed: DateTime<FixedOffset> = local.with_timezone(&local.offset().fix());
    let default_fmt = if offset == 0 {
        "YYYY-MM-DDTHH:mm:ss[Z]"
    } else {
        "YYYY-MM-DDTHH:mm:ssZ"
    };
    let fmt = match fmt {
        Some(f) if !f.is_empty() => f,
        _ => default_fmt,
    };
    let fmt = expand_long(fmt);
    let d = &fixed;
    let mut out = String::new();
    for c in token_re().captures_iter(&fmt) {
        if let Some(lit) = c.get(1) {
            let s = lit.as_str();
            out.push_str(&s[1..s.len() - 1]);
            continue;
        }
        let tok = c.get(3).map(|m| m.as_str()).unwrap_or_default();
        if c.get(2).is_some() {
            out.push_str(tok);
            continue;
        }
        let year = d.year() as i64;
        let month = d.month() as i64;
        let h24 = d.hour() as i64;
        let h12 = if h24 % 12 == 0 { 12 } else { h24 % 12 };
        let wd = d.weekday().num_days_from_sunday() as i64;
        let ms = (d.nanosecond() / 1_000_000).min(999) as i64;
        let s = match tok {
            "M" => month.to_string(),
            "Mo" => ordinal(month),
            "MM" => pad(month, 2),
            "MMM" => MONTHS[(month - 1) as usize][..3].to_string(),
            "MMMM" => MONTHS[(month - 1) as usize].to_string(),
            "Q" => ((month - 1) / 3 + 1).to_string(),
            "Qo" => ordinal((month - 1) / 3 + 1),
            "D" => d.day().to_string(),
            "Do" => ordinal(d.day() as i64),
            "DD" => pad(d.day() as i64, 2),
            "DDD" => d.ordinal().to_string(),
            "DDDo" => ordinal(d.ordinal() as i64),
            "DDDD" => pad(d.ordinal() as i64, 3),
            "d" | "e" => wd.to_string(),
            "do" => ordinal(wd),
            "dd" => DAYS[wd as usize][..2].to_string(),
            "ddd" => DAYS[wd as usize][..3].to_string(),
            "dddd" => DAYS[wd as usize].to_string(),
            "E" => d.weekday().number_from_monday().to_string(),
            "w" => week_of_year(d, 0, 6).0.to_string(),
            "wo" => ordinal(week_of_year(d, 0, 6).0),
            "ww" => pad(week_of_year(d, 0, 6).0, 2),
            "W" => week_of_year(d, 1, 4).0.to_string(),
            "Wo" => ordinal(week_of_year(d, 1, 4).0),
            "WW" => pad(week_of_year(d, 1, 4).0, 2),
            "Y" | "YYYY" => {
                if year <= 9999 {
                    pad(year, 4)
                } else {
                    format!("+{year}")
                }
            }
            "YY" => pad(year.rem_euclid(100), 2),
            "YYYYY" => pad(year, 5),
            "YYYYYY" => {
                if year < 0 {
                    format!("-{}", pad(-year, 6))
                } else {
                    format!("+{}", pad(year, 6))
                }
            }
            "gg" => pad((week_of_year(d, 0, 6).1 as i64).rem_euclid(100), 2),
            "gggg" => pad(week_of_year(d, 0, 6).1 as i64, 4),
            "ggggg" => pad(week_of_year(d, 0, 6).1 as i64, 5),
            "GG" => pad((week_of_year(d, 1, 4).1 as i64).rem_euclid(100), 2),
            "GGGG" => pad(week_of_year(d, 1, 4).1 as i64, 4),
            "GGGGG" => pad(week_of_year(d, 1, 4).1 as i64, 5),
            "N" | "NN" | "NNN" => if year > 0 { "AD" } else { "BC" }.to_string(),
            "NNNN" => if year > 0 {
                "Anno Domini"
            } else {
                "Before Christ"
            }
            .to_string(),
            "NNNNN" => if year > 0 { "AD" } else { "BC" }.to_string(),
            "y" | "yyyy" => year.to_string(),
            "yy" => pad(year.rem_euclid(100), 2),
            "yyy" => pad(year, 3),
            "yo" => ordinal(year),
            "a" => if h24 < 12 { "am" } else { "pm" }.to_string(),
            "A" => if h24 < 12 { "AM" } else { "PM" }.to_string(),
            "H" => h24.to_string(),
            "HH" => pad(h24, 2),
            "h" => h12.to_string(),
            "hh" => pad(h12, 2),
            "k" => (if h24 == 0 { 24 } else { h24 }).to_string(),
            "kk" => pad(if h24 == 0 { 24 } else { h24 }, 2),
            "Hmm" => format!("{}{}", h24, pad(d.minute() as i64, 2)),
            "Hmmss" => format!(
                "{}{}{}",
                h24,
                pad(d.minute() as i64, 2),
                pad(d.second() as i64, 2)
            ),
            "hmm" => format!("{}{}", h12, pad(d.minute() as i64, 2)),
            "hmmss" => format!(
                "{}{}{}",
                h12,
                pad(d.minute() as i64, 2),
                pad(d.second() as i64, 2)
            ),
            "m" => d.minute().to_string(),
            "mm" => pad(d.minute() as i64, 2),
            "s" => d.second().to_string(),
            "ss" => pad(d.second() as i64, 2),
            "X" => instant.timestamp().to_string(),
            "x" => instant.timestamp_millis().to_string(),
            "z" | "zz" => abbr.clone(),
            "Z" => offset_str(offset, true),
            "ZZ" => offset_str(offset, false),
            t if t.starts_with('S') => {
                let n = t.len();
                match n {
                    1 => (ms / 100).to_string(),
                    2 => pad(ms / 10, 2),
                    _ => format!("{}{}", pad(ms, 3), "0".repeat(n - 3)),
                }
            }
            other => other.to_string(),
        };
        out.push_str(&s);
    }
    out
}

/// `Date#toISOString()`: `2020-01-10T00:30:00.000Z`.
pub fn iso_string(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// An instant from RFC 3339 / ISO 8601 text, as `new Date(text)` accepts it for GitHub's formats.
pub fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| Utc.from_utc_datetime(&n))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2020, 1, 10, 0, 30, 0).unwrap()
    }

    #[test]
    fn formats_like_moment() {
        let utc = zone("UTC").unwrap();
        assert_eq!(format(t(), utc, Some("YYYYMMDD")), "20200110");
        assert_eq!(
            format(t(), utc, Some("YYYY-MM-DDTHH:mm:ss.SSS[Z]")),
            "2020-01-10T00:30:00.000Z"
        );
        assert_eq!(format(t(), utc, None), "2020-01-10T00:30:00Z");
        assert_eq!(
            format(t(), utc, Some("dddd Do MMMM YY, h:mm a")),
            "Friday 10th January 20, 12:30 am"
        );
        assert_eq!(format(t(), utc, Some("[Week] W, w")), "Week 2, 2");
        assert_eq!(format(t(), utc, Some("\\YYYY [YYYY] \\Q")), "YYYY YYYY Q");
        assert_eq!(format(t(), utc, Some("X x")), "1578616200 1578616200000");
        let paris = zone("Europe/Paris").unwrap();
        assert_eq!(
            format(t(), paris, Some("YYYY-MM-DD HH:mm Z z")),
            "2020-01-10 01:30 +01:00 CET"
        );
        assert_eq!(format(t(), paris, None), "2020-01-10T01:30:00+01:00");
        let ny = zone("America/New_York").unwrap();
        assert_eq!(format(t(), ny, Some("L LT ZZ")), "01/09/2020 7:30 PM -0500");
        assert!(zone("Mars/Olympus").is_none());
        assert!(zone("europe/paris").is_some());
    }

    #[test]
    fn iso_and_parse() {
        assert_eq!(iso_string(t()), "2020-01-10T00:30:00.000Z");
        assert_eq!(parse_instant("2020-01-10T01:30:00+01:00"), Some(t()));
        assert_eq!(parse_instant("nope"), None);
    }

    #[test]
    fn week_years_at_boundaries() {
        let d = Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap();
        let utc = zone("UTC").unwrap();
        assert_eq!(format(d, utc, Some("GGGG-WW gggg-ww")), "2020-53 2021-01");
    }
}
