//! Hiding secrets that travel inside values: webhook and chat URLs often
//! carry a token in their path or query (`/services/T0/B0/XXXX`,
//! `?token=…`). Logs and traces show where a URL points, never the token.

/// `url` with everything after the first path segment, the query, the
/// fragment and any user info replaced: `https://hooks.example.com/services/***`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "***".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let after = &rest[end..];
    if after.is_empty() || after == "/" {
        return format!("{scheme}://{host}{after}");
    }
    let first = after
        .strip_prefix('/')
        .and_then(|p| p.split(['/', '?', '#']).next())
        .filter(|segment| !segment.is_empty());
    match first {
        Some(segment) => format!("{scheme}://{host}/{segment}/***"),
        None => format!("{scheme}://{host}/***"),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_url;

    #[test]
    fn tokens_in_urls_are_hidden() {
        let cases = [
            (
                "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                "https://hooks.slack.com/services/***",
            ),
            (
                "https://crm.example.com/hooks?token=SECRET",
                "https://crm.example.com/hooks/***",
            ),
            (
                "https://user:SECRET@crm.example.com/x/y",
                "https://crm.example.com/x/***",
            ),
            ("https://crm.example.com", "https://crm.example.com"),
            ("https://crm.example.com/", "https://crm.example.com/"),
            (
                "https://crm.example.com/?key=SECRET",
                "https://crm.example.com/***",
            ),
            (
                "http://127.0.0.1:8090/hooks/crm",
                "http://127.0.0.1:8090/hooks/***",
            ),
            ("not a url", "***"),
        ];
        for (url, masked) in cases {
            assert_eq!(mask_url(url), masked, "{url}");
            assert!(!mask_url(url).contains("SECRET"));
        }
    }
}
