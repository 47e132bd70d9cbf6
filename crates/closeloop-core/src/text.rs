//! Text folding for keyword matching: case, accents and spacing ignored.
//!
//! "Résilier", "RESILIER" and "resilier" must all match the keyword
//! `résilier`, "STRASSE" must match `Straße`, and a no-break space (typed
//! before `!` and `?` in French) is a space, because customers type however
//! they type. Comments and keywords go through the same [`fold`], and
//! keywords through [`keyword`], in the table form and in CEL alike.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Fold `text` for case- and accent-insensitive comparison: compatibility
/// decomposition (ligatures split, no-break spaces become spaces), combining
/// marks dropped, full Unicode case folding (`ß` is `ss`), and every run of
/// white space one ASCII space. Leading and trailing spaces are kept: a
/// keyword's spaces are part of it.
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        return squeeze_spaces(text.chars().map(|c| c.to_ascii_lowercase()));
    }
    let stripped: String = text.nfkd().filter(|c| !is_combining_mark(*c)).collect();
    let folded = caseless::default_case_fold_str(&stripped);
    // Folding can produce a decomposable letter again (rarely): once more.
    squeeze_spaces(folded.nfkd().filter(|c| !is_combining_mark(*c)))
}

fn squeeze_spaces(chars: impl Iterator<Item = char>) -> String {
    let mut out = String::new();
    let mut in_space = false;
    for c in chars {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// A keyword of `comment_any`, `containsAny`, `contains`, `startsWith` or
/// `endsWith`, folded; `None` when it is blank. Not trimmed: `" résilie "`
/// asks for the spaces around the word.
pub fn keyword(raw: &str) -> Option<String> {
    let folded = fold(raw);
    (!folded.trim().is_empty()).then_some(folded)
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
            ("naïve Straße", "naive strasse"),
            ("STRASSE", "strasse"),
            ("Merci\u{a0}!", "merci !"),
            ("Quoi\u{202f}?", "quoi ?"),
            ("deux  espaces\tet\nligne", "deux espaces et ligne"),
            ("ﬁnal", "final"),
            (" résilie ", " resilie "),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(fold(input), expected, "{input}");
        }
    }

    #[test]
    fn blank_keywords_are_refused_and_spaces_kept() {
        use super::keyword;
        assert_eq!(keyword(" \u{a0} "), None);
        assert_eq!(keyword(""), None);
        assert_eq!(keyword(" Résilie ").as_deref(), Some(" resilie "));
    }
}
