//! The list-input layer of the docker actions (`Util.getInputList` in docker/actions-toolkit):
//! the whole input is CSV (`"` quotes, `""` escapes, newlines allowed inside quotes), quotes in the
//! middle of an unquoted field are kept (`relaxQuotes`), a line whose **first** character is `#` is a
//! comment (`commentNoInfix`: `#` elsewhere is kept), empty lines are skipped, then each record
//! becomes one entry (fields re-joined with `,`) or one entry per field, trimmed, empties dropped.
//!
//! Used by inputs whose upstream equivalent parses this way (metadata-action's `tags`, `flavor`,
//! `labels`, `images`; build-push-action's `tags`, `labels`, `build-args`…). Plain newline lists
//! use [`Inputs::list`](crate::Inputs::list).
//!
//! See: reference/metadata-action.md §2 (verified against csv-parse 7).

/// Parses a list input. `ignore_comma`: one entry per line (fields re-joined with `,`); otherwise
/// one entry per field. Errors describe the CSV problem (the caller names the input).
pub fn csv_list(value: &str, ignore_comma: bool) -> Result<Vec<String>, String> {
    let records = parse_records(value)?;
    let mut out = Vec::new();
    for fields in records {
        if fields.len() == 1 || ignore_comma {
            out.push(fields.join(","));
        } else {
            out.extend(fields);
        }
    }
    Ok(out
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

fn parse_records(text: &str) -> Result<Vec<Vec<String>>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut records = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        // Record start: comment lines and empty lines.
        if chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            i += 1;
            line += 1;
            continue;
        }
        if chars[i] == '\n' || (chars[i] == '\r' && chars.get(i + 1) == Some(&'\n')) {
            i += if chars[i] == '\r' { 2 } else { 1 };
            line += 1;
            continue;
        }
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if chars.get(i) == Some(&'"') {
                let start_line = line;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(format!(
                                "quote opened on line {start_line} is never closed"
                            ));
                        }
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            if *c == '\n' {
                                line += 1;
                            }
                            field.push(*c);
                            i += 1;
                        }
                    }
                }
                match chars.get(i) {
                    None | Some(',') | Some('\n') => {}
                    Some('\r') if chars.get(i + 1) == Some(&'\n') => {}
                    Some(c) => {
                        return Err(format!(
                            "unexpected `{c}` after a closing quote on line {line}"
                        ));
                    }
                }
            } else {
                while let Some(c) = chars.get(i) {
                    if *c == ',' || *c == '\n' || (*c == '\r' && chars.get(i + 1) == Some(&'\n')) {
                        break;
                    }
                    field.push(*c);
                    i += 1;
                }
            }
            fields.push(field);
            match chars.get(i) {
                Some(',') => {
                    i += 1;
                }
                Some('\r') => {
                    i += 2;
                    line += 1;
                    break;
                }
                Some('\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        records.push(fields);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_line_with_ignore_comma() {
        let v = csv_list("type=ref,event=branch\n\ntype=sha\n", true).unwrap();
        assert_eq!(v, vec!["type=ref,event=branch", "type=sha"]);
    }

    #[test]
    fn fields_split_without_ignore_comma() {
        assert_eq!(csv_list("a,b\nc", false).unwrap(), vec!["a", "b", "c"]);
    }

    #[test]
    fn comments_only_at_line_start() {
        let v = csv_list(
            "# comment\ntype=match,pattern=mkdocs#(.*)\n  # not a comment",
            true,
        )
        .unwrap();
        assert_eq!(v, vec!["type=match,pattern=mkdocs#(.*)", "# not a comment"]);
    }

    #[test]
    fn leading_quotes_are_stripped_inner_quotes_kept() {
        // `"pattern=\d{1,2}"` loses its quotes here (the verified upstream surprise).
        assert_eq!(
            csv_list("type=match,\"pattern=\\d{1,2}\"", true).unwrap(),
            vec!["type=match,pattern=\\d{1,2}"]
        );
        assert_eq!(
            csv_list("\"type=match,\"\"pattern=\\d{1,2}\"\"\"", true).unwrap(),
            vec!["type=match,\"pattern=\\d{1,2}\""]
        );
        assert_eq!(
            csv_list(
                "org.opencontainers.image.description=this is a \"good\" example",
                true
            )
            .unwrap(),
            vec!["org.opencontainers.image.description=this is a \"good\" example"]
        );
    }

    #[test]
    fn quoted_newlines_and_errors() {
        assert_eq!(csv_list("\"a\nb\",c", true).unwrap(), vec!["a\nb,c"]);
        assert!(
            csv_list("\"open", true)
                .unwrap_err()
                .contains("never closed")
        );
        assert!(csv_list("\"a\"b", true).is_err());
        assert_eq!(csv_list("a\r\nb\r\n", true).unwrap(), vec!["a", "b"]);
    }
}
