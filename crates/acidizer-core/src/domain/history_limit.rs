/// How many history records one page holds: 1..=100, 20 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimit(u16);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit is a whole number from 1 to 100")]
pub struct InvalidHistoryLimit;

impl HistoryLimit {
    pub const MAX: u16 = 100;

    pub fn parse(raw: &str) -> Result<Self, InvalidHistoryLimit> {
        match raw.parse::<u16>() {
            Ok(n) if (1..=Self::MAX).contains(&n) && raw.bytes().all(|b| b.is_ascii_digit()) => Ok(Self(n)),
            _ => Err(InvalidHistoryLimit),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for HistoryLimit {
    fn default() -> Self {
        Self(20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_range() {
        assert_eq!(HistoryLimit::parse("1").unwrap().get(), 1);
        assert_eq!(HistoryLimit::parse("100").unwrap().get(), 100);
        for bad in ["0", "101", "-1", "+5", "abc", "", "1.5", "99999999999"] {
            assert!(HistoryLimit::parse(bad).is_err(), "{bad}");
        }
    }
}
