//! Personal fields of an account; stored encrypted.

fn text(raw: &str, min: usize, max: usize) -> Result<String, String> {
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        return Err(if min == 1 { "must not be empty".into() } else { format!("must have at least {min} characters") });
    }
    if len > max {
        return Err(format!("must have at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

#[derive(Debug, Clone)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        text(raw, 1, 50).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number: digits with optional leading `+` and separators (space, `-`, `.`,
/// parentheses), 7 to 15 digits as E.164 allows.
#[derive(Debug, Clone)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let value = raw.trim();
        let digits = value.chars().filter(char::is_ascii_digit).count();
        let allowed =
            value.char_indices().all(|(i, c)| c.is_ascii_digit() || " -.()".contains(c) || (c == '+' && i == 0));
        if !allowed || !(7..=15).contains(&digits) {
            return Err("must be a phone number of 7 to 15 digits, e.g. +82 10-1234-5678".into());
        }
        Ok(Self(value.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct Address(String);

impl Address {
    pub fn parse(raw: &str) -> Result<Self, String> {
        text(raw, 5, 200).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert!(Phone::parse("+82 10-1234-5678").is_ok());
        assert!(Phone::parse("010.1234.5678").is_ok());
        assert!(Phone::parse("12345").is_err());
        assert!(Phone::parse("call me").is_err());
        assert!(Phone::parse("10+1234567").is_err());
    }

    #[test]
    fn names_and_addresses() {
        assert_eq!(PersonName::parse("  Jimin ").unwrap().as_str(), "Jimin");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(51)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
        assert!(Address::parse("Seoul").is_ok());
        assert!(Address::parse("Sel").is_err());
    }
}
