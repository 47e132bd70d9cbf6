//! Text folding for keyword matching: lower case, accents removed.
//!
//! "Résilier", "RESILIER" and "resilier" must all match the keyword
//! `résilier`, because customers type however they type.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Fold `text` for case- and accent-insensitive comparison: canonical
/// decomposition, combining marks dropped, then lower-cased.
pub fn fold(text: &str) -> String {
    text.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folds_case_and_accents() {
        let cases = [
            ("Résilier", "resilier"),
            ("RÉSILIER", "resilier"),
            ("Ça suffit", "ca suffit"),
            ("Dangereux !", "dangereux !"),
            ("naïve Straße", "naive straße"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(fold(input), expected, "{input}");
        }
    }
}
