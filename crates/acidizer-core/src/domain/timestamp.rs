use std::fmt;
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Room for a formatted timestamp: `2026-11-23T10:00:00.000Z` is 24 bytes, a year before 0 one more.
const FORMATTED_LEN: usize = 32;

/// A UTC instant with millisecond precision, shown as `2026-11-23T10:00:00.000Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn unix_millis(self) -> i64 {
        self.0
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The timestamp's text, written into `text` (on the stack: a timestamp is in every answer, and needs no
    /// allocation of its own); `None` for an instant no year of four digits or so can show (a corrupt record).
    fn format_into(self, text: &mut [u8; FORMATTED_LEN]) -> Option<&str> {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()?;
        let mut out = &mut text[..];
        at.format_into(&mut out, FORMAT).ok()?;
        let written = FORMATTED_LEN - out.len();
        std::str::from_utf8(&text[..written]).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0_u8; FORMATTED_LEN];
        f.write_str(self.format_into(&mut text).ok_or(fmt::Error)?)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = [0_u8; FORMATTED_LEN];
        match self.format_into(&mut text) {
            Some(text) => s.serialize_str(text),
            None => Err(serde::ser::Error::custom(format_args!("{} ms since 1970 is no date", self.0))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_milliseconds_and_z() {
        assert_eq!(Timestamp::from_unix_millis(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_unix_millis(1_795_428_000_123).to_string(), "2026-11-23T10:00:00.123Z");
    }

    #[test]
    fn an_instant_no_date_can_show_is_an_error_not_a_panic() {
        let far = Timestamp::from_unix_millis(i64::MAX);
        let error = serde_json::to_string(&far).unwrap_err();
        assert!(error.to_string().contains("is no date"), "{error}");
        assert!(std::fmt::write(&mut String::new(), format_args!("{far}")).is_err());
    }
}
