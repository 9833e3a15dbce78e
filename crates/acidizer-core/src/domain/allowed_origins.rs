//! Which browser pages may call the API and open its WebSocket: `ALLOWED_ORIGINS`, a comma-separated list of
//! origins, or `*`.

/// The variable that lists the origins whose pages may call the API and open its WebSocket.
pub const ALLOWED_ORIGINS_ENV: &str = "ALLOWED_ORIGINS";

/// The origins whose pages may call the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Same-origin pages only.
    #[default]
    None,
    Any,
    /// These origins, each one a valid HTTP header value.
    List(Vec<String>),
}

#[derive(Debug, thiserror::Error)]
#[error("ALLOWED_ORIGINS holds an origin that is not a valid header value: {0:?}")]
pub struct InvalidOrigin(String);

impl AllowedOrigins {
    /// Parses the value of `ALLOWED_ORIGINS`; an unset or empty value allows no other origin.
    pub fn parse(raw: &str) -> Result<Self, InvalidOrigin> {
        let origins: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if origins.contains(&"*") {
            return Ok(Self::Any);
        }
        if origins.is_empty() {
            return Ok(Self::None);
        }
        origins
            .into_iter()
            .map(
                |origin| {
                    if is_header_value(origin) { Ok(origin.to_owned()) } else { Err(InvalidOrigin(origin.to_owned())) }
                },
            )
            .collect::<Result<Vec<_>, _>>()
            .map(Self::List)
    }

    /// Whether a page from `origin` (a request's `Origin` header) may open a WebSocket: an allowed origin, or the
    /// host's own pages when it serves them (`own_host`, the request's `Host`, over http or https). A request
    /// without `Origin` is not from a browser page, and is not checked.
    pub fn admits(&self, origin: Option<&str>, own_host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let own = own_host.is_some_and(|host| {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        });
        own || match self {
            Self::None => false,
            Self::Any => true,
            Self::List(list) => list.iter().any(|allowed| allowed == origin),
        }
    }
}

/// What an HTTP header value may hold (RFC 9110's field-value: visible characters, spaces and tabs).
fn is_header_value(text: &str) -> bool {
    text.bytes().all(|byte| (byte >= 0x20 && byte != 0x7f) || byte == b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_wildcards() {
        assert_eq!(AllowedOrigins::parse("").unwrap(), AllowedOrigins::None);
        assert_eq!(AllowedOrigins::parse("*").unwrap(), AllowedOrigins::Any);
        assert_eq!(AllowedOrigins::parse("https://a.example, *").unwrap(), AllowedOrigins::Any);
        assert_eq!(
            AllowedOrigins::parse("https://a.example, http://localhost:5173").unwrap(),
            AllowedOrigins::List(vec!["https://a.example".to_owned(), "http://localhost:5173".to_owned()])
        );
        assert!(AllowedOrigins::parse("https://a.example\n").is_ok());
        assert!(AllowedOrigins::parse("bad\u{7f}origin").is_err());
        assert!(AllowedOrigins::parse("bad\u{1}origin").is_err());
    }

    #[test]
    fn admits_listed_origins_the_hosts_own_pages_and_clients_that_are_not_pages() {
        let listed = AllowedOrigins::parse("https://a.example").unwrap();
        assert!(listed.admits(Some("https://a.example"), None));
        assert!(!listed.admits(Some("https://evil.example"), None));
        assert!(!listed.admits(Some("https://a.example.evil.example"), None));
        assert!(!listed.admits(Some("null"), Some("null")));
        assert!(listed.admits(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")), "the host's own page");
        assert!(!listed.admits(Some("http://127.0.0.1:8081"), Some("127.0.0.1:8080")));
        assert!(listed.admits(None, None), "no Origin: not a browser page");
        assert!(!AllowedOrigins::None.admits(Some("https://a.example"), None));
        assert!(AllowedOrigins::Any.admits(Some("https://anything.example"), None));
    }
}
