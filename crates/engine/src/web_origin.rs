//! Where browsers meet the server, as typed settings: the sites whose pages may send
//! credentialed requests (`[server] allowed_origins`) and the address pages reach this server
//! at (`[server] public_url`). Parsed when the configuration is read, so a typo stops the
//! start instead of silently refusing a site.

use std::fmt;

use serde::Deserialize;

/// A web origin, `scheme://host[:port]`, lower-cased as browsers send it in `Origin`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct WebOrigin(String);

impl WebOrigin {
    /// The origin as browsers write it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebOrigin {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        let (scheme, host) = split_url(&raw)?;
        if host.contains('/') {
            return Err(format!(
                "`{raw}` is not an origin: an origin has no path (write `{scheme}://{}`)",
                host.split('/').next().unwrap_or_default()
            ));
        }
        // Browsers leave a scheme's default port out of `Origin`.
        let host = host.to_ascii_lowercase();
        let default_port = if scheme == "https" { ":443" } else { ":80" };
        let host = host.strip_suffix(default_port).unwrap_or(&host);
        Ok(WebOrigin(format!("{scheme}://{host}")))
    }
}

impl fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The address pages reach this server at, behind whatever proxy terminates TLS: `http` or
/// `https`, a host with an optional port, and an optional path prefix (no trailing slash).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PublicUrl {
    https: bool,
    rest: String,
}

impl PublicUrl {
    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    /// Host, port and path prefix, without the scheme (`events.shop.example/consentric`).
    pub fn host_and_path(&self) -> &str {
        &self.rest
    }
}

impl TryFrom<String> for PublicUrl {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        let (scheme, rest) = split_url(&raw)?;
        if rest.contains(['?', '#']) {
            return Err(format!("`{raw}`: a public URL has no query or fragment"));
        }
        Ok(PublicUrl {
            https: scheme == "https",
            rest: rest.trim_end_matches('/').to_owned(),
        })
    }
}

fn split_url(raw: &str) -> Result<(&'static str, &str), String> {
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| format!("`{raw}` must start with http:// or https://"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => "http",
        "https" => "https",
        _ => return Err(format!("`{raw}` must start with http:// or https://")),
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(['@', ' ', '?', '#']) {
        return Err(format!(
            "`{raw}` has no host (or one with `@`, a space, `?` or `#`)"
        ));
    }
    Ok((scheme, rest.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_and_host_only() {
        let o = WebOrigin::try_from("HTTPS://Shop.Example:8443".to_owned()).expect("origin");
        assert_eq!(o.as_str(), "https://shop.example:8443");
        let o = WebOrigin::try_from("https://shop.example:443".to_owned()).expect("origin");
        assert_eq!(o.as_str(), "https://shop.example", "as browsers send it");
        assert!(WebOrigin::try_from("https://shop.example/cart".to_owned()).is_err());
        assert!(WebOrigin::try_from("shop.example".to_owned()).is_err());
        assert!(WebOrigin::try_from("ftp://shop.example".to_owned()).is_err());
        assert!(WebOrigin::try_from("https://user@shop.example".to_owned()).is_err());
    }

    #[test]
    fn public_urls_keep_a_path_prefix() {
        let u =
            PublicUrl::try_from("https://events.shop.example/consentric/".to_owned()).expect("url");
        assert_eq!(
            (u.scheme(), u.host_and_path()),
            ("https", "events.shop.example/consentric")
        );
        assert!(PublicUrl::try_from("https://x.example/?a=1".to_owned()).is_err());
        assert!(PublicUrl::try_from("https://".to_owned()).is_err());
    }
}
