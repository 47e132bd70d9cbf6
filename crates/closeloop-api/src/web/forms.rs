//! Posted forms, read as name → values (a field may repeat: the cases
//! ticked in the inbox).

use std::collections::HashMap;

use axum::body::Bytes;

#[derive(Debug, Default)]
pub(crate) struct FormFields(HashMap<String, Vec<String>>);

impl FormFields {
    pub fn parse(body: &Bytes) -> FormFields {
        let mut fields: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in form_urlencoded::parse(body) {
            fields
                .entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        FormFields(fields)
    }

    /// The first value of `name`, trimmed; `None` when absent or blank.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .and_then(|values| values.first())
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_repeat_and_blank_ones_are_absent() {
        let form = FormFields::parse(&Bytes::from_static(
            b"case=a&case=b&note=+&csrf=x%2By&reason=late%20again",
        ));
        assert_eq!(form.all("case"), ["a", "b"]);
        assert_eq!(form.get("note"), None);
        assert_eq!(form.get("csrf"), Some("x+y"));
        assert_eq!(form.get("reason"), Some("late again"));
        assert!(form.all("missing").is_empty());
    }
}
