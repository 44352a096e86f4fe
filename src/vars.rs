//! `${VAR}` references in configuration strings: finding them and substituting them.
//!
//! Pure string handling; knows nothing of where values come from. `$$` is a literal `$`.

/// One `${NAME}` in a string, with its byte range in that string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    pub name: &'a str,
    pub start: usize,
    pub end: usize,
}

/// Every `${NAME}` in `text`, in order. An unterminated `${` is not a reference.
pub fn references(text: &str) -> Vec<Reference<'_>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'$' && bytes.get(position + 1) == Some(&b'$') {
            position += 2;
            continue;
        }
        if bytes[position] == b'$'
            && bytes.get(position + 1) == Some(&b'{')
            && let Some(length) = text[position + 2..].find('}')
        {
            {
                let end = position + 2 + length + 1;
                found.push(Reference {
                    name: &text[position + 2..end - 1],
                    start: position,
                    end,
                });
                position = end;
                continue;
            }
        }
        position += 1;
    }
    found
}

/// Replaces each reference whose name `lookup` knows; the others stay as written.
/// `$$` becomes `$` only when `unescape` is set (at the very end of resolution).
pub fn substitute(text: &str, lookup: impl Fn(&str) -> Option<String>, unescape: bool) -> String {
    let mut result = String::with_capacity(text.len());
    let mut copied_until = 0;
    for reference in references(text) {
        if let Some(value) = lookup(reference.name) {
            result.push_str(&text[copied_until..reference.start]);
            result.push_str(&value);
            copied_until = reference.end;
        }
    }
    result.push_str(&text[copied_until..]);
    if unescape {
        result.replace("$$", "$")
    } else {
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references_and_skips_escapes() {
        let text = "a ${ONE} $${NOT} ${TWO}x ${open";
        let names: Vec<_> = references(text).iter().map(|r| r.name).collect();
        assert_eq!(names, ["ONE", "TWO"]);
        let first = &references(text)[0];
        assert_eq!(&text[first.start..first.end], "${ONE}");
    }

    #[test]
    fn substitutes_known_names_only() {
        let lookup = |name: &str| (name == "TAG").then(|| "1.2".to_owned());
        assert_eq!(
            substitute("img:${TAG} ${SECRET} $$", lookup, false),
            "img:1.2 ${SECRET} $$"
        );
        assert_eq!(substitute("a$$b", |_| None, true), "a$b");
    }
}
