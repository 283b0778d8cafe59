use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

/// Where the next page starts: after the product with this id (pages run newest
/// first, by id, so rows added while a client pages never shift its pages).
/// Opaque to clients: base64url of `v1:{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub after_id: i64,
}

impl Cursor {
    pub fn parse(s: &str) -> Result<Self, String> {
        let invalid = || "the cursor is not one this API returned".to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let id = text.strip_prefix("v1:").and_then(|id| id.parse::<i64>().ok()).filter(|id| *id > 0);
        id.map(|after_id| Self { after_id }).ok_or_else(invalid)
    }

    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v1:{}", self.after_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_forgeries() {
        let c = Cursor { after_id: 1234 };
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        for bad in ["bogus", "", "djE6", "djE6LTE", "djI6MTI"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
}
