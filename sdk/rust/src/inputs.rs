//! Typed access to `with:` inputs and parameters.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::InputSpec;

/// An input that is missing or does not parse. Its message names the input,
/// the value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    message: String,
}

impl InputError {
    /// An error with this exact message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message, e.g. ``input `count` is `ten`: expected a whole number``.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

/// A type an input string converts to. The error says what was expected,
/// e.g. "a whole number"; [`Inputs`] adds the input's name and value.
pub trait FromInput: Sized {
    /// Parses one input value.
    fn from_input(value: &str) -> Result<Self, String>;
}

impl FromInput for String {
    fn from_input(value: &str) -> Result<Self, String> {
        Ok(value.to_owned())
    }
}

impl FromInput for PathBuf {
    fn from_input(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("a path, not an empty string".into());
        }
        Ok(PathBuf::from(value))
    }
}

impl FromInput for bool {
    fn from_input(value: &str) -> Result<Self, String> {
        match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("`true` or `false`".into()),
        }
    }
}

macro_rules! from_input_int {
    ($($t:ty),*) => {$(
        impl FromInput for $t {
            fn from_input(value: &str) -> Result<Self, String> {
                value.trim().parse().map_err(|_| {
                    format!("a whole number from {} to {}", <$t>::MIN, <$t>::MAX)
                })
            }
        }
    )*};
}
from_input_int!(u8, u16, u32, u64, i32, i64, usize);

impl FromInput for f64 {
    fn from_input(value: &str) -> Result<Self, String> {
        match value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err("a number".into()),
        }
    }
}

/// `500ms`, `30s`, `2m`, `1h`; a bare number is seconds.
impl FromInput for Duration {
    fn from_input(value: &str) -> Result<Self, String> {
        let expected = || "a duration like `500ms`, `30s`, `2m` or `1h`".to_string();
        let v = value.trim();
        let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
        let (digits, unit) = v.split_at(split);
        let n: u64 = digits.parse().map_err(|_| expected())?;
        let ms = match unit {
            "ms" => Some(n),
            "" | "s" => n.checked_mul(1_000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            _ => None,
        };
        ms.map(Duration::from_millis).ok_or_else(expected)
    }
}

/// A comma-separated list, e.g. `10,50,100`; blanks around items are ignored.
impl<T: FromInput> FromInput for Vec<T> {
    fn from_input(value: &str) -> Result<Self, String> {
        if value.trim().is_empty() {
            return Ok(Vec::new());
        }
        value
            .split(',')
            .map(|item| {
                T::from_input(item.trim()).map_err(|e| format!("a comma-separated list of {e}"))
            })
            .collect()
    }
}

/// The `with:` values of a step (or a health check's or strategy's
/// parameters), read through the plugin's declared [`InputSpec`]s so that
/// defaults apply even where the host did not fill them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    values: Vec<(String, String)>,
    specs: Vec<InputSpec>,
}

impl Inputs {
    /// Values as the host passed them, interpreted with `specs`.
    pub fn new(values: Vec<(String, String)>, specs: Vec<InputSpec>) -> Self {
        Self { values, specs }
    }

    /// The raw value of `name`: the one set, else the declared default.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                let spec = self.specs.iter().find(|s| s.name == name)?;
                spec.default.as_deref()
            })
    }

    /// Input `name`, parsed; an error if it is missing (and has no default)
    /// or does not parse.
    pub fn get<T: FromInput>(&self, name: &str) -> Result<T, InputError> {
        match self.optional(name)? {
            Some(v) => Ok(v),
            None => Err(InputError::new(format!(
                "input `{name}` is required: set it under `with:`"
            ))),
        }
    }

    /// Input `name`, parsed, or `None` when it is not set and has no default.
    pub fn optional<T: FromInput>(&self, name: &str) -> Result<Option<T>, InputError> {
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        T::from_input(raw).map(Some).map_err(|expected| {
            InputError::new(format!("input `{name}` is `{raw}`: expected {expected}"))
        })
    }

    /// Every value that was set, in order (defaults not included).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(values: &[(&str, &str)]) -> Inputs {
        Inputs::new(
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            vec![
                InputSpec::required("name", "who"),
                InputSpec::with_default("count", "how many", "3"),
                InputSpec::optional("shout", "upper case"),
            ],
        )
    }

    #[test]
    fn set_values_win_over_defaults() {
        let i = inputs(&[("count", "7")]);
        assert_eq!(i.get::<u32>("count").unwrap(), 7);
        assert_eq!(inputs(&[]).get::<u32>("count").unwrap(), 3);
    }

    #[test]
    fn a_missing_required_input_names_itself_and_the_fix() {
        let err = inputs(&[]).get::<String>("name").unwrap_err();
        assert_eq!(
            err.message(),
            "input `name` is required: set it under `with:`"
        );
        assert_eq!(inputs(&[]).optional::<bool>("shout").unwrap(), None);
    }

    #[test]
    fn a_malformed_value_says_what_was_expected() {
        let err = inputs(&[("count", "ten")]).get::<u8>("count").unwrap_err();
        assert_eq!(
            err.message(),
            "input `count` is `ten`: expected a whole number from 0 to 255"
        );
        let err = inputs(&[("shout", "yes")])
            .get::<bool>("shout")
            .unwrap_err();
        assert_eq!(
            err.message(),
            "input `shout` is `yes`: expected `true` or `false`"
        );
    }

    #[test]
    fn durations_take_units_and_bare_seconds() {
        let d = |s| Duration::from_input(s);
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("30"), Ok(Duration::from_secs(30)));
        assert_eq!(d("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            d("5 days"),
            Err("a duration like `500ms`, `30s`, `2m` or `1h`".into())
        );
        assert!(d("99999999999999999999h").is_err());
    }

    #[test]
    fn lists_are_comma_separated() {
        assert_eq!(Vec::<u8>::from_input("10, 50,100"), Ok(vec![10, 50, 100]));
        assert_eq!(Vec::<u8>::from_input(""), Ok(vec![]));
        assert_eq!(
            Vec::<u8>::from_input("10,x"),
            Err("a comma-separated list of a whole number from 0 to 255".into())
        );
    }

    #[test]
    fn the_last_value_of_a_repeated_key_wins() {
        let i = inputs(&[("name", "a"), ("name", "b")]);
        assert_eq!(i.get::<String>("name").unwrap(), "b");
        assert_eq!(i.iter().count(), 2);
    }

    #[test]
    fn numbers_reject_non_finite_values_and_empty_paths() {
        assert_eq!(f64::from_input("1.5"), Ok(1.5));
        assert_eq!(f64::from_input("NaN"), Err("a number".into()));
        assert_eq!(
            PathBuf::from_input(""),
            Err("a path, not an empty string".into())
        );
    }
}
