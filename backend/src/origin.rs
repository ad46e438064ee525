//! Browser `Origin` values, compared the way the web platform does: scheme, host and port, with
//! the scheme's default port filled in. A WebSocket upgrade whose `Origin` is not allowed is
//! refused, which stops other sites from opening sockets with a visitor's cookie.

use std::fmt;
use std::str::FromStr;

/// A parsed origin: `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// `http://host:port`.
    pub fn http(host: String, port: u16) -> Self {
        Self::new("http", host, port)
    }

    /// `scheme://host:port`.
    pub fn new(scheme: &str, host: String, port: u16) -> Self {
        Self {
            scheme: scheme.into(),
            host,
            port,
        }
    }
}

impl FromStr for Origin {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim().trim_end_matches('/');
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or_else(|| format!("origin {raw:?} has no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" | "ws" => 80,
            "https" | "wss" => 443,
            _ => return Err(format!("origin {raw:?} has an unsupported scheme")),
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(format!("origin {raw:?} must be scheme://host[:port]"));
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("origin {raw:?} has an unclosed '['"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("origin {raw:?} is malformed")),
            };
            (format!("[{host}]"), port)
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host.to_owned(), Some(port)),
                None => (rest.to_owned(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| format!("origin {raw:?} has a bad port"))?,
            None => default_port,
        };
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(s: &str) -> Origin {
        s.parse().expect("valid origin")
    }

    #[test]
    fn default_ports_and_case_are_normalised() {
        assert_eq!(o("http://Example.com"), o("http://example.com:80"));
        assert_eq!(o("https://example.com/"), o("https://example.com:443"));
        assert_ne!(o("http://example.com"), o("https://example.com"));
        assert_ne!(o("http://127.0.0.1:8080"), o("http://127.0.0.1:8081"));
        assert_eq!(o("http://[::1]:8080"), o("http://[::1]:8080"));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "null",
            "example.com",
            "ftp://x",
            "http://",
            "http://a/b",
            "http://a:x",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
    }
}
