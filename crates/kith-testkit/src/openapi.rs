//! Checks a JSON value against a schema of an OpenAPI 3.0 document, for
//! the subset the daemon's document uses: `$ref`, `allOf` (one), `nullable`,
//! `type`, `enum`, `properties` (all of them: no undocumented field),
//! `required`, `items`, `additionalProperties: true`.

use serde_json::Value;

/// Checks `value` against the schema at `pointer` (like
/// `/components/schemas/Message`) in `doc`. The error names the place.
pub fn check(doc: &Value, pointer: &str, value: &Value) -> Result<(), String> {
    let schema = doc
        .pointer(pointer)
        .ok_or_else(|| format!("no schema at {pointer}"))?;
    walk(doc, schema, value, "$")
}

/// The schema of a 200 answer of `method` on `path`.
pub fn answer_pointer(path: &str, method: &str) -> String {
    let escaped = path.replace('~', "~0").replace('/', "~1");
    format!("/paths/{escaped}/{method}/responses/200/content/application~1json/schema")
}

fn walk(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .ok_or_else(|| format!("{at}: no schema {r}"))?;
        return walk(doc, target, value, at);
    }
    if value.is_null() {
        return if schema.get("nullable") == Some(&Value::Bool(true)) {
            Ok(())
        } else {
            Err(format!("{at}: null where the document does not allow it"))
        };
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            walk(doc, s, value, at)?;
        }
        return Ok(());
    }
    if let Some(any) = schema.get("oneOf").and_then(Value::as_array) {
        let errors: Vec<String> = any
            .iter()
            .filter_map(|s| walk(doc, s, value, at).err())
            .collect();
        return if errors.len() < any.len() {
            Ok(())
        } else {
            Err(format!("{at}: fits none of oneOf: {}", errors.join("; ")))
        };
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    let Some(kind) = schema.get("type").and_then(Value::as_str) else {
        return Ok(());
    };
    match (kind, value) {
        ("string", Value::String(_)) | ("boolean", Value::Bool(_)) => Ok(()),
        ("integer", Value::Number(n)) if n.is_u64() || n.is_i64() => {
            if schema.get("minimum").and_then(Value::as_i64) == Some(0) && n.is_i64() && !n.is_u64()
            {
                return Err(format!("{at}: {n} is below 0"));
            }
            Ok(())
        }
        ("array", Value::Array(items)) => {
            let item = schema.get("items").unwrap_or(&Value::Null);
            for (i, v) in items.iter().enumerate() {
                walk(doc, item, v, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        ("object", Value::Object(fields)) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(name) {
                    return Err(format!("{at}: no field {name:?}"));
                }
            }
            let open = schema.get("additionalProperties") == Some(&Value::Bool(true));
            for (name, v) in fields {
                match props.and_then(|p| p.get(name)) {
                    Some(s) => walk(doc, s, v, &format!("{at}.{name}"))?,
                    None if open => {}
                    None => return Err(format!("{at}: field {name:?} is not in the document")),
                }
            }
            Ok(())
        }
        _ => Err(format!("{at}: {value} is not a {kind}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn the_checker_finds_what_differs() {
        let doc = json!({"components": {"schemas": {
            "A": {"type": "object", "required": ["n"], "properties": {
                "n": {"type": "integer", "minimum": 0},
                "s": {"type": "string", "nullable": true, "enum": ["x", "y"]},
                "l": {"type": "array", "items": {"$ref": "#/components/schemas/B"}}}},
            "B": {"type": "boolean"}}}});
        let p = "/components/schemas/A";
        assert!(check(&doc, p, &json!({"n": 1, "s": null, "l": [true]})).is_ok());
        assert!(check(&doc, p, &json!({"n": 1, "s": "x"})).is_ok());
        assert!(check(&doc, p, &json!({"s": "x"})).is_err());
        assert!(check(&doc, p, &json!({"n": -1})).is_err());
        assert!(check(&doc, p, &json!({"n": 1, "s": "z"})).is_err());
        assert!(check(&doc, p, &json!({"n": 1, "l": [1]})).is_err());
        assert!(check(&doc, p, &json!({"n": 1, "extra": 1})).is_err());
    }
}
