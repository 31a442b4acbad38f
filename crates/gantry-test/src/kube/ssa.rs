//! Server-side apply semantics for the fake Kubernetes API: field sets per manager, the merge of
//! an applied configuration into a live object, conflicts, and the `managedFields` rendering.
//!
//! It models what our action and kubectl rely on (keyed lists such as `containers` by `name`,
//! conflicts between managers that set different values, force taking ownership, fields dropped
//! from an apply removed when nobody else owns them). It does not model OpenAPI schemas.
//!
//! See: <https://kubernetes.io/docs/reference/using-api/server-side-apply/>

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One step in a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Seg {
    /// A map field.
    F(String),
    /// An item of a keyed list, with its key as compact JSON (`{"name":"web"}`).
    K(String),
}

/// A path to an owned field.
pub(crate) type Path = Vec<Seg>;

/// Owners of fields in one object.
#[derive(Clone, Debug)]
pub(crate) struct Manager {
    pub(crate) name: String,
    pub(crate) operation: &'static str,
    pub(crate) api_version: String,
    pub(crate) time: String,
    pub(crate) subresource: Option<String>,
    pub(crate) fields: BTreeSet<Path>,
}

/// The merge key of items of the list named `field`, when the list is a map.
fn list_key(field: &str, items: &[Value]) -> Option<Vec<&'static str>> {
    let first = items.first()?.as_object()?;
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases" => Some(vec!["name"]),
        "volumeMounts" => Some(vec!["mountPath"]),
        "conditions" => Some(vec!["type"]),
        "ports" if first.contains_key("containerPort") => Some(vec!["containerPort", "protocol"]),
        "ports" if first.contains_key("port") => Some(vec!["port", "protocol"]),
        _ => None,
    }
}

fn item_key(keys: &[&str], item: &Value) -> String {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) => {
                m.insert((*k).to_string(), v.clone());
            }
            None if *k == "protocol" => {
                m.insert("protocol".into(), Value::String("TCP".into()));
            }
            None => {}
        }
    }
    Value::Object(m).to_string()
}

/// The leaf field set of an applied (or updated) object, skipping identity and status.
pub(crate) fn field_set(obj: &Value) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for sub in ["labels", "annotations"] {
                    if let Some(m) = v.get(sub).and_then(Value::as_object) {
                        for key in m.keys() {
                            out.insert(vec![
                                Seg::F("metadata".into()),
                                Seg::F(sub.into()),
                                Seg::F(key.clone()),
                            ]);
                        }
                    }
                }
            }
            _ => walk(&mut out, vec![Seg::F(k.clone())], v),
        }
    }
    out
}

fn walk(out: &mut BTreeSet<Path>, path: Path, v: &Value) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(Seg::F(k.clone()));
                walk(out, p, child);
            }
        }
        Value::Array(items) => {
            let field = match path.last() {
                Some(Seg::F(f)) => f.as_str(),
                _ => "",
            };
            if let Some(keys) = list_key(field, items) {
                for item in items {
                    let mut p = path.clone();
                    p.push(Seg::K(item_key(&keys, item)));
                    out.insert(p.clone());
                    if let Some(m) = item.as_object() {
                        for (k, child) in m {
                            let mut c = p.clone();
                            c.push(Seg::F(k.clone()));
                            walk(out, c, child);
                        }
                    }
                }
            } else {
                out.insert(path);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// The value at `path`, if present.
pub(crate) fn get<'a>(obj: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = obj;
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Seg::F(f) => cur = cur.get(f)?,
            Seg::K(key) => {
                let items = cur.as_array()?;
                let field = match i.checked_sub(1).and_then(|j| path.get(j)) {
                    Some(Seg::F(f)) => f.as_str(),
                    _ => "",
                };
                let keys = list_key(field, items)?;
                cur = items.iter().find(|it| &item_key(&keys, it) == key)?;
            }
        }
    }
    Some(cur)
}

fn parent_mut<'a>(obj: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for (i, seg) in path.iter().enumerate() {
        match seg {
            Seg::F(f) => cur = cur.get_mut(f)?,
            Seg::K(key) => {
                let field = match i.checked_sub(1).and_then(|j| path.get(j)) {
                    Some(Seg::F(f)) => f.clone(),
                    _ => String::new(),
                };
                let items = cur.as_array_mut()?;
                let keys = list_key(&field, items)?;
                cur = items.iter_mut().find(|it| &item_key(&keys, it) == key)?;
            }
        }
    }
    Some(cur)
}

/// Removes the field at `path` from `obj` (a keyed list item is removed whole).
pub(crate) fn remove(obj: &mut Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let field = match parent.last() {
        Some(Seg::F(f)) => f.clone(),
        _ => String::new(),
    };
    let Some(p) = parent_mut(obj, parent) else {
        return;
    };
    match last {
        Seg::F(f) => {
            if let Some(m) = p.as_object_mut() {
                m.remove(f);
            }
        }
        Seg::K(key) => {
            if let Some(items) = p.as_array_mut()
                && let Some(keys) = list_key(&field, items)
            {
                items.retain(|it| &item_key(&keys, it) != key);
            }
        }
    }
}

/// Merges `applied` into `live`: maps recursively, keyed lists by key, everything else replaced.
pub(crate) fn merge(live: &mut Value, applied: &Value, field: &str) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) => merge(existing, v, k),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => {
            if let Some(keys) = list_key(field, a).or_else(|| list_key(field, l)) {
                let mut out: Vec<Value> = Vec::new();
                // Applied items in applied order, merged with their live counterpart; then live
                // items the apply does not mention (owned by someone else or about to be pruned).
                for item in a {
                    let k = item_key(&keys, item);
                    match l.iter().find(|it| item_key(&keys, it) == k) {
                        Some(existing) => {
                            let mut e = existing.clone();
                            merge(&mut e, item, "");
                            out.push(e);
                        }
                        None => out.push(item.clone()),
                    }
                }
                for item in l.iter() {
                    let k = item_key(&keys, item);
                    if !a.iter().any(|it| item_key(&keys, it) == k) {
                        out.push(item.clone());
                    }
                }
                *l = out;
            } else {
                *l = a.clone();
            }
        }
        (l, a) => *l = a.clone(),
    }
}

/// Whether `path` or anything below it is in `set`.
pub(crate) fn owns_under(set: &BTreeSet<Path>, path: &[Seg]) -> bool {
    set.iter().any(|p| p.starts_with(path))
}

/// Renders a path the way the API server names it in conflict messages.
pub(crate) fn display(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::F(f) => {
                s.push('.');
                s.push_str(f);
            }
            Seg::K(k) => {
                let v: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                let inner = v
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default();
                s.push_str(&format!("[{inner}]"));
            }
        }
    }
    s
}

/// Renders a field set as `fieldsV1`.
pub(crate) fn fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            let name = match seg {
                Seg::F(f) => format!("f:{f}"),
                Seg::K(k) => format!("k:{k}"),
            };
            let is_key = matches!(seg, Seg::K(_));
            let entry = cur.entry(name).or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Some(next) = entry.as_object_mut() else {
                break;
            };
            if is_key {
                next.entry(".").or_insert_with(|| Value::Object(Map::new()));
            }
            cur = next;
        }
    }
    Value::Object(root)
}

/// A conflict found while applying.
#[derive(Debug)]
pub(crate) struct Conflict {
    pub(crate) manager: String,
    pub(crate) path: Path,
}

/// Applies `applied` by `manager` on `live` (None when creating). Returns the new object and the
/// new manager list, or the conflicts when not forced.
pub(crate) fn apply(
    live: Option<&Value>,
    managers: &[Manager],
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    now: &str,
) -> Result<(Value, Vec<Manager>), Vec<Conflict>> {
    let new_set = field_set(applied);
    let mut mgrs: Vec<Manager> = managers.to_vec();
    let mut result = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut conflicts = Vec::new();
    for m in mgrs.iter_mut() {
        if m.name == manager && m.operation == "Apply" {
            continue;
        }
        let mut taken = Vec::new();
        for p in &new_set {
            // Only leaves conflict; a keyed-list item marker (`.`) only records existence.
            if matches!(p.last(), Some(Seg::K(_))) {
                continue;
            }
            if m.fields.contains(p) && get(&result, p) != get(applied, p) {
                if force {
                    taken.push(p.clone());
                } else {
                    conflicts.push(Conflict {
                        manager: m.name.clone(),
                        path: p.clone(),
                    });
                }
            }
        }
        for p in taken {
            m.fields.remove(&p);
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let old_set = mgrs
        .iter()
        .find(|m| m.name == manager && m.operation == "Apply")
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    // Fields we applied before and no longer apply: removed unless another manager owns them.
    let others: BTreeSet<Path> = mgrs
        .iter()
        .filter(|m| !(m.name == manager && m.operation == "Apply"))
        .flat_map(|m| m.fields.iter().cloned())
        .collect();
    let mut removed = Vec::new();
    for p in old_set.difference(&new_set) {
        if !owns_under(&others, p) {
            remove(&mut result, p);
            removed.push(p.clone());
        }
    }
    // A list whose last item was removed goes away as a field, as on a real API server.
    for p in removed {
        if let Some(i) = p.iter().rposition(|s| matches!(s, Seg::K(_))) {
            let list = &p[..i];
            if get(&result, list)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
                && !owns_under(&new_set, list)
                && !owns_under(&others, list)
            {
                remove(&mut result, list);
            }
        }
    }
    merge(&mut result, applied, "");
    mgrs.retain(|m| !(m.name == manager && m.operation == "Apply"));
    mgrs.push(Manager {
        name: manager.to_string(),
        operation: "Apply",
        api_version: api_version.to_string(),
        time: now.to_string(),
        subresource: None,
        fields: new_set,
    });
    mgrs.retain(|m| !m.fields.is_empty());
    Ok((result, mgrs))
}

/// Records an Update (PUT or non-apply PATCH) by `manager`: changed fields move to it.
pub(crate) fn update(
    old: Option<&Value>,
    new: &Value,
    managers: &[Manager],
    manager: &str,
    api_version: &str,
    now: &str,
    subresource: Option<&str>,
) -> Vec<Manager> {
    let new_set = field_set(new);
    let old_set = old.map(field_set).unwrap_or_default();
    let changed: BTreeSet<Path> = new_set
        .iter()
        .filter(|p| match p.last() {
            // An item marker changes hands only when the item is new.
            Some(Seg::K(_)) => old.and_then(|o| get(o, p)).is_none(),
            _ => old.and_then(|o| get(o, p)) != get(new, p),
        })
        .cloned()
        .collect();
    let removed: BTreeSet<Path> = old_set.difference(&new_set).cloned().collect();
    let mut mgrs: Vec<Manager> = managers.to_vec();
    for m in mgrs.iter_mut() {
        m.fields
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() {
        match mgrs
            .iter_mut()
            .find(|m| m.name == manager && m.operation == "Update")
        {
            Some(m) => {
                m.fields.extend(changed);
                m.time = now.to_string();
            }
            None => mgrs.push(Manager {
                name: manager.to_string(),
                operation: "Update",
                api_version: api_version.to_string(),
                time: now.to_string(),
                subresource: subresource.map(str::to_string),
                fields: changed,
            }),
        }
    }
    mgrs.retain(|m| !m.fields.is_empty());
    mgrs
}

/// `metadata.managedFields` for a manager list.
pub(crate) fn managed_fields(mgrs: &[Manager]) -> Value {
    Value::Array(
        mgrs.iter()
            .map(|m| {
                let mut e = serde_json::json!({
                    "manager": m.name,
                    "operation": m.operation,
                    "apiVersion": m.api_version,
                    "time": m.time,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_v1(&m.fields),
                });
                if let Some(s) = &m.subresource {
                    e["subresource"] = Value::String(s.clone());
                }
                e
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(image: &str) -> Value {
        json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web"}},
            "spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"web","image":image}]}}}})
    }

    #[test]
    fn conflict_then_force() {
        let (live, m) =
            apply(None, &[], &dep("a:1"), "gantry", false, "apps/v1", "t").expect("apply");
        let mut edited = live.clone();
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("a:0");
        let m = update(Some(&live), &edited, &m, "kubectl", "apps/v1", "t", None);
        let err = apply(
            Some(&edited),
            &m,
            &dep("a:2"),
            "gantry",
            false,
            "apps/v1",
            "t",
        )
        .expect_err("conflict");
        assert_eq!(err[0].manager, "kubectl");
        assert_eq!(
            display(&err[0].path),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
        let (out, m) = apply(
            Some(&edited),
            &m,
            &dep("a:2"),
            "gantry",
            true,
            "apps/v1",
            "t",
        )
        .expect("forced");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "a:2"
        );
        assert!(m.iter().all(|x| x.name == "gantry"));
    }

    #[test]
    fn dropped_field_removed() {
        let mut with_env = dep("a:1");
        with_env["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name":"A","value":"1"}]);
        let (live, m) = apply(None, &[], &with_env, "gantry", false, "apps/v1", "t").expect("a");
        let (out, _) = apply(
            Some(&live),
            &m,
            &dep("a:1"),
            "gantry",
            false,
            "apps/v1",
            "t",
        )
        .expect("b");
        assert!(
            out["spec"]["template"]["spec"]["containers"][0]
                .get("env")
                .is_none()
        );
    }
}
