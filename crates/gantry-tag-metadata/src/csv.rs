//! The two CSV layers upstream's inputs go through, reproduced: the list-input layer (one entry per
//! record, fields re-joined with `,`, `#` comments only at the start of a record, relaxed quotes)
//! and the strict record parser used for one tag/flavor/image entry (a quote inside a field is an
//! error).
//!
//! It must not interpret entries: it only splits text the way csv-parse does.
//!
//! See: <https://csv.js.org/parse/options/relax_quotes/> and docker/actions-toolkit `Util.getInputList`.

/// A CSV syntax error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    /// A `"` inside an unquoted field (strict mode only).
    #[error("invalid opening quote: a quote is found inside field {field} (`{value}`)")]
    OpeningQuote {
        /// 1-based field number.
        field: usize,
        /// The field so far.
        value: String,
    },
    /// A closing `"` followed by something other than a delimiter (strict mode only).
    #[error("invalid closing quote: a quoted field {field} is followed by `{next}`")]
    ClosingQuote {
        /// 1-based field number.
        field: usize,
        /// The character after the quote.
        next: char,
    },
    /// Input ends inside a quoted field.
    #[error("quote not closed: the input ends inside a quoted field")]
    Unclosed,
}

/// Parser options (the subset of csv-parse options upstream uses).
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `relax_quotes`: quotes inside unquoted fields are kept, a quote after a closing quote is kept.
    pub relax_quotes: bool,
    /// `comment: '#'` with `comment_no_infix`: a record starting with `#` is a comment.
    pub hash_comments: bool,
}

/// Parses CSV text into records of fields (empty lines skipped).
pub fn parse(input: &str, opts: Options) -> Result<Vec<Vec<String>>, CsvError> {
    let chars: Vec<char> = input.chars().collect();
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoting = false;
    let mut was_quoting = false;
    let mut commenting = false;
    let mut i = 0;
    let n = chars.len();
    let is_record_end = |i: usize| -> usize {
        match chars.get(i) {
            Some('\r') if chars.get(i + 1) == Some(&'\n') => 2,
            Some('\n') | Some('\r') => 1,
            _ => 0,
        }
    };
    while i < n {
        let c = chars[i];
        if commenting {
            let l = is_record_end(i);
            if l > 0 {
                commenting = false;
                i += l;
            } else {
                i += 1;
            }
            continue;
        }
        if quoting {
            if c == '"' {
                if chars.get(i + 1) == Some(&'"') {
                    field.push('"');
                    i += 2;
                    continue;
                }
                let next = chars.get(i + 1).copied();
                let closes = match next {
                    None => true,
                    Some(',') => true,
                    Some(_) if is_record_end(i + 1) > 0 => true,
                    Some('#') if opts.hash_comments => true,
                    _ => false,
                };
                if closes {
                    quoting = false;
                    was_quoting = true;
                    i += 1;
                    continue;
                }
                if !opts.relax_quotes {
                    return Err(CsvError::ClosingQuote {
                        field: record.len() + 1,
                        next: next.unwrap_or(' '),
                    });
                }
                // csv-parse keeps the opening quote and drops this one.
                quoting = false;
                was_quoting = true;
                field.insert(0, '"');
                i += 1;
                continue;
            }
            field.push(c);
            i += 1;
            continue;
        }
        if c == '"' {
            if field.is_empty() && !was_quoting {
                quoting = true;
                i += 1;
                continue;
            }
            if !opts.relax_quotes {
                return Err(CsvError::OpeningQuote {
                    field: record.len() + 1,
                    value: field.clone(),
                });
            }
            field.push(c);
            i += 1;
            continue;
        }
        if opts.hash_comments && c == '#' && record.is_empty() && field.is_empty() && !was_quoting {
            commenting = true;
            i += 1;
            continue;
        }
        if c == ',' {
            record.push(std::mem::take(&mut field));
            was_quoting = false;
            i += 1;
            continue;
        }
        let l = is_record_end(i);
        if l > 0 {
            if !(record.is_empty() && field.is_empty() && !was_quoting) {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            was_quoting = false;
            i += l;
            continue;
        }
        field.push(c);
        i += 1;
    }
    if quoting {
        return Err(CsvError::Unclosed);
    }
    let empty = record.is_empty() && field.is_empty() && !was_quoting;
    if !commenting && !empty {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Upstream's list-input layer (`Util.getInputList(name, {ignoreComma: true, comment: '#',
/// commentNoInfix: true})`): one entry per record, fields joined with `,`, trimmed, empty
/// entries dropped. `input` is the already-trimmed input value.
pub fn input_list(input: &str) -> Result<Vec<String>, CsvError> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    let records = parse(
        input,
        Options {
            relax_quotes: true,
            hash_comments: true,
        },
    )?;
    Ok(records
        .into_iter()
        .map(|r| r.join(","))
        .filter(|s| !s.is_empty())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// The fields of the first record of one entry, parsed strictly (no relaxed quotes), as the
/// tag, flavor and image parsers do.
pub fn entry_fields(entry: &str) -> Result<Vec<String>, CsvError> {
    Ok(parse(entry, Options::default())?
        .into_iter()
        .next()
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_layer_matches_upstream() {
        assert_eq!(
            input_list("type=ref,event=branch\n# comment\ntype=match,pattern=mkdocs#(.*)\n\n  \n")
                .unwrap(),
            vec!["type=ref,event=branch", "type=match,pattern=mkdocs#(.*)"]
        );
        // A field starting with a quote is unquoted here (behaviour 9).
        assert_eq!(
            input_list(r#"type=match,"pattern=\d{1,2}""#).unwrap(),
            vec![r"type=match,pattern=\d{1,2}"]
        );
        assert_eq!(
            input_list(r#""type=match,""pattern=\d{1,2}""""#).unwrap(),
            vec![r#"type=match,"pattern=\d{1,2}""#]
        );
        // Quotes in the middle are kept (relax_quotes).
        assert_eq!(
            input_list(r#"description=this is a "good" example"#).unwrap(),
            vec![r#"description=this is a "good" example"#]
        );
        assert_eq!(input_list("\"a\"b").unwrap(), vec!["\"ab"]);
        assert!(input_list("\"open").is_err());
        assert_eq!(input_list("a\r\nb").unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn entry_parser_is_strict() {
        assert_eq!(
            entry_fields("type=raw,value=x").unwrap(),
            vec!["type=raw", "value=x"]
        );
        assert!(matches!(
            entry_fields(r#"type=raw,value=a"b"#),
            Err(CsvError::OpeningQuote { field: 2, .. })
        ));
        assert!(matches!(
            entry_fields(r#""a"b"#),
            Err(CsvError::ClosingQuote { .. })
        ));
        assert_eq!(
            entry_fields(r#"type=match,"pattern=\d{1,2}""#).unwrap(),
            vec!["type=match", r"pattern=\d{1,2}"]
        );
        assert_eq!(entry_fields("a,").unwrap(), vec!["a", ""]);
        assert_eq!(entry_fields("a\nb").unwrap(), vec!["a"]);
    }
}
