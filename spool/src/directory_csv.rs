//! Reading a directory export: the CSV file of `[directory] file`, one
//! line at a time (a national directory has millions of lines; the file is
//! never held in memory), each line checked on its own: address syntax,
//! a known partner, ISO dates in order, no contradiction with an address
//! of the configuration. Problems carry the file's 1-based line number.
//!
//! The format: a header `address,partner,valid_from,valid_to`, then one
//! line per addressing identifier; the dates are optional (empty = open).
//! Fields may be wrapped in double quotes; they never contain commas.

use std::collections::HashMap;
use std::io::BufRead;

use chrono::NaiveDate;

use crate::directory::{check_address, DirectoryLine, LineProblem};

/// The header a directory file starts with.
pub const HEADER: &str = "address,partner,valid_from,valid_to";

/// What a line is checked against.
pub struct LineChecks<'a> {
    /// Is this a configured partner?
    pub known_partner: &'a (dyn Fn(&str) -> bool + Sync),
    /// The configuration's addresses (address → partner): a file line for
    /// one of them must name the same partner.
    pub config: &'a HashMap<String, String>,
}

/// The lines of a directory file, parsed and checked one by one.
pub struct CsvLines<'a, R> {
    reader: R,
    buf: String,
    line: u64,
    checks: &'a LineChecks<'a>,
    header_seen: bool,
}

impl<'a, R: BufRead> CsvLines<'a, R> {
    pub fn new(reader: R, checks: &'a LineChecks<'a>) -> Self {
        CsvLines {
            reader,
            buf: String::new(),
            line: 0,
            checks,
            header_seen: false,
        }
    }
}

fn field(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn date(s: &str, name: &str, problems: &mut Vec<String>) -> Option<NaiveDate> {
    if s.is_empty() {
        return None;
    }
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            problems.push(format!("{name} {s:?} is not an ISO date (YYYY-MM-DD)"));
            None
        }
    }
}

impl<R: BufRead> CsvLines<'_, R> {
    fn check(&self, text: &str) -> Result<DirectoryLine, String> {
        let fields: Vec<&str> = text.split(',').map(field).collect();
        if fields.len() != 4 {
            return Err(format!("{} fields where {HEADER} has 4", fields.len()));
        }
        let mut problems = Vec::new();
        let (address, partner) = (fields[0], fields[1]);
        if let Err(e) = check_address(address) {
            problems.push(e);
        }
        if partner.is_empty() {
            problems.push("no partner".to_owned());
        } else if !(self.checks.known_partner)(partner) {
            problems.push(format!("partner {partner:?} is not configured"));
        }
        let valid_from = date(fields[2], "valid_from", &mut problems);
        let valid_to = date(fields[3], "valid_to", &mut problems);
        if let (Some(f), Some(t)) = (valid_from, valid_to) {
            if t < f {
                problems.push(format!("valid_to {t} is before valid_from {f}"));
            }
        }
        if let Some(other) = self.checks.config.get(address) {
            if other != partner && !partner.is_empty() {
                problems.push(format!(
                    "{address} is given to partner {other:?} by the configuration, here to {partner:?}"
                ));
            }
        }
        if problems.is_empty() {
            Ok(DirectoryLine {
                address: address.to_owned(),
                partner: partner.to_owned(),
                valid_from,
                valid_to,
                line: self.line as i64,
            })
        } else {
            Err(problems.join("; "))
        }
    }
}

impl<R: BufRead> Iterator for CsvLines<'_, R> {
    type Item = Result<DirectoryLine, LineProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_line(&mut self.buf) {
                Ok(0) if !self.header_seen => {
                    self.header_seen = true;
                    return Some(Err(LineProblem {
                        line: 1,
                        message: format!("empty file: the header {HEADER} is missing"),
                    }));
                }
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    self.header_seen = true;
                    return Some(Err(LineProblem {
                        line: self.line + 1,
                        message: format!("cannot read: {e}"),
                    }));
                }
            }
            self.line += 1;
            let text = self.buf.trim_end_matches(['\n', '\r']);
            if !self.header_seen {
                self.header_seen = true;
                let header = text.trim_start_matches('\u{feff}').replace(' ', "");
                if header != HEADER {
                    return Some(Err(LineProblem {
                        line: self.line,
                        message: format!("the header must be {HEADER}, not {text:?}"),
                    }));
                }
                continue;
            }
            if text.trim().is_empty() {
                continue;
            }
            return Some(self.check(text).map_err(|message| LineProblem {
                line: self.line,
                message,
            }));
        }
    }
}
