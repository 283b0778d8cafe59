/// A password acceptable for a new account: 8 to 128 characters, not all the same
/// kind (letters only or digits only are refused).
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < 8 {
            return Err("must have at least 8 characters".into());
        }
        if chars > 128 {
            return Err("must have at most 128 characters".into());
        }
        let has_letter = raw.chars().any(char::is_alphabetic);
        let has_other = raw.chars().any(|c| !c.is_alphabetic());
        if !(has_letter && has_other) {
            return Err("must mix letters with digits or symbols".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

// No Debug: a password must never reach a log line.

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn accepts_reasonable_and_refuses_weak() {
        assert!(Password::parse("correct horse 1").is_ok());
        assert!(Password::parse("short1").is_err());
        assert!(Password::parse("onlyletters").is_err());
        assert!(Password::parse("1234567890").is_err());
        assert!(Password::parse(&"a1".repeat(65)).is_err());
    }
}
