/// A syntactically valid e-mail address, trimmed and lower-cased so that one mailbox
/// has one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let normalised = raw.trim().to_lowercase();
        if normalised.len() > 254 {
            return Err("is longer than 254 characters".into());
        }
        if !email_address::EmailAddress::is_valid(&normalised) || !normalised.contains('.') {
            return Err("is not an e-mail address".into());
        }
        Ok(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(Email::parse("  Jimin@Example.COM ").unwrap().as_str(), "jimin@example.com");
    }

    #[test]
    fn rejects_non_addresses() {
        for bad in ["", "jimin", "@example.com", "jimin@", "a b@example.com", "jimin@localhost"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
