//! The bounds every counter stays within: 0 and a ceiling (1 000 000 000 unless configured).

use std::fmt;

/// The environment variable that sets the ceiling of the Lambda functions.
pub const COUNTER_MAX_ENV: &str = "COUNTER_MAX";

/// The largest ceiling a setting may name: 2^53, the largest integer every JSON client reads exactly.
pub const LARGEST_CEILING: u64 = 1 << 53;

/// A counter's ceiling: a whole number from 1 to 2^53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CounterMax(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the counter ceiling ({COUNTER_MAX_ENV}, --counter-max) must be a whole number from 1 to {LARGEST_CEILING}, not {0:?}"
)]
pub struct InvalidCounterMax(pub String);

impl CounterMax {
    /// The Number Acidizer's own ceiling.
    pub const DEFAULT: CounterMax = CounterMax(1_000_000_000);

    pub fn new(max: u64) -> Result<Self, InvalidCounterMax> {
        if (1..=LARGEST_CEILING).contains(&max) { Ok(Self(max)) } else { Err(InvalidCounterMax(max.to_string())) }
    }

    pub fn parse(raw: &str) -> Result<Self, InvalidCounterMax> {
        let invalid = || InvalidCounterMax(raw.to_owned());
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        raw.parse::<u64>().map_err(|_| invalid()).and_then(|max| Self::new(max).map_err(|_| invalid()))
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// The ceiling `COUNTER_MAX` names, or the default when it is unset (set to anything else, it is refused).
    pub fn from_env() -> Result<Self, InvalidCounterMax> {
        match std::env::var_os(COUNTER_MAX_ENV) {
            None => Ok(Self::DEFAULT),
            Some(raw) => Self::parse(&raw.to_string_lossy()),
        }
    }
}

impl Default for CounterMax {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for CounterMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a change does to a counter: +1 or -1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delta {
    Increment,
    Decrement,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a change is +1 or -1, not {0}")]
pub struct InvalidDelta(pub i64);

impl Delta {
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Increment => 1,
            Self::Decrement => -1,
        }
    }

    pub fn from_i64(delta: i64) -> Result<Self, InvalidDelta> {
        match delta {
            1 => Ok(Self::Increment),
            -1 => Ok(Self::Decrement),
            other => Err(InvalidDelta(other)),
        }
    }

    /// The operation's name, as in its route.
    pub fn operation(self) -> &'static str {
        match self {
            Self::Increment => "increment",
            Self::Decrement => "decrement",
        }
    }

    /// The value after this change of `value`, or the bound it would cross.
    pub fn apply(self, value: u64, max: CounterMax) -> Result<u64, Bound> {
        match self {
            Self::Increment if value >= max.get() => Err(Bound::Ceiling(max)),
            Self::Increment => Ok(value + 1),
            Self::Decrement if value == 0 => Err(Bound::Floor),
            Self::Decrement => Ok(value - 1),
        }
    }
}

/// The bound a refused change would have crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// 0: a counter never goes below it.
    Floor,
    /// The ceiling: a counter never goes above it.
    Ceiling(CounterMax),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_whole_numbers_from_one_to_two_to_the_53() {
        assert_eq!(CounterMax::parse("3").unwrap().get(), 3);
        assert_eq!(CounterMax::parse("9007199254740992").unwrap().get(), LARGEST_CEILING);
        for bad in ["0", "9007199254740993", "-1", "1e9", " 5", "", "abc", "99999999999999999999999"] {
            assert!(CounterMax::parse(bad).is_err(), "{bad:?} is refused");
        }
        assert_eq!(CounterMax::default().get(), 1_000_000_000);
    }

    #[test]
    fn changes_stay_within_the_bounds() {
        let max = CounterMax::new(3).unwrap();
        assert_eq!(Delta::Increment.apply(2, max), Ok(3));
        assert_eq!(Delta::Increment.apply(3, max), Err(Bound::Ceiling(max)));
        assert_eq!(Delta::Decrement.apply(1, max), Ok(0));
        assert_eq!(Delta::Decrement.apply(0, max), Err(Bound::Floor));
        assert_eq!(Delta::from_i64(-1), Ok(Delta::Decrement));
        assert!(Delta::from_i64(2).is_err());
    }
}
