//! Unknown keys: every one reported with its place and a suggestion, then removed, so that
//! serde (with `deny_unknown_fields`) sees only known keys and the other problems of the
//! same table are still found.
//!
//! The known keys of a `Raw*` struct come from its own `Deserialize` impl (serde passes
//! them to `deserialize_struct`), so this list cannot drift from the struct.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::de::{DeTable, DeValue};

use super::problem::{FileId, Place, Problem};

/// The field names of a struct that derives `Deserialize`.
pub fn fields_of<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Capture<'a>(&'a mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Capture(&mut fields));
    fields
}

/// Reports and removes the keys of `table` that are not in `known`.
pub fn remove_unknown_keys(
    table: &mut DeTable<'_>,
    known: &[&str],
    what: &str,
    file: FileId,
    problems: &mut Vec<Problem>,
) {
    let unknown: Vec<(String, std::ops::Range<usize>)> = table
        .keys()
        .filter(|key| !known.contains(&key.get_ref().as_ref()))
        .map(|key| (key.get_ref().to_string(), key.span()))
        .collect();
    for (name, span) in unknown {
        let problem = Problem::new(format!("unknown key `{name}` in {what}"))
            .at(Place::new(file, span), "not a known key");
        problems.push(
            match super::problem::suggestion(&name, known.iter().copied()) {
                Some(close) => problem.help(format!(
                    "did you mean `{close}`? the keys allowed here are: {}",
                    known.join(", ")
                )),
                None => problem.help(format!("the keys allowed here are: {}", known.join(", "))),
            },
        );
        table.remove(name.as_str());
    }
}

/// The table inside `value`, if it is one.
pub fn table_mut<'a, 'i>(value: &'a mut DeValue<'i>) -> Option<&'a mut DeTable<'i>> {
    match value {
        DeValue::Table(table) => Some(table),
        _ => None,
    }
}

/// `remove_unknown_keys` on the table under `key`, if that is a table.
pub fn check_nested<T: for<'de> Deserialize<'de>>(
    table: &mut DeTable<'_>,
    key: &str,
    what: &str,
    file: FileId,
    problems: &mut Vec<Problem>,
) {
    if let Some(nested) = table
        .get_mut(key)
        .and_then(|value| table_mut(value.get_mut()))
    {
        remove_unknown_keys(nested, fields_of::<T>(), what, file, problems);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::{RawHealth, RawPhaseFile};

    #[test]
    fn reads_field_names_from_the_struct() {
        assert!(fields_of::<RawHealth>().contains(&"attempt_timeout"));
        assert_eq!(
            fields_of::<RawPhaseFile>(),
            ["phase", "name", "description", "services", "on_failure"]
        );
    }
}
