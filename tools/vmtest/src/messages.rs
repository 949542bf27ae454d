// SPDX-License-Identifier: GPL-2.0
//! The project's own warnings and errors, as the kernel prints them.
//!
//! A scenario fails when the kernel prints one it does not expect: a failure
//! path taken where none should be is a bug even when every check passes.
//! The messages are read from the sources (`dev_warn!`, `dev_err!`,
//! `pr_warn!`, `pr_err!`), so a new one is watched without being listed.

use std::fs;
use std::path::Path;

const MACROS: &[&str] = &["dev_warn!(", "dev_err!(", "pr_warn!(", "pr_err!("];

/// Shorter fixed parts could match unrelated kernel lines.
const MIN_LEN: usize = 12;

/// The longest fixed part of each warning or error message in Rust source
/// `text`: of its format string, split at its arguments and line ends.
pub fn in_source(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for name in MACROS {
        for (at, _) in text.match_indices(name) {
            let rest = &text[at + name.len()..];
            let Some(open) = rest.find('"') else { continue };
            let literal = &rest[open + 1..];
            let literal = &literal[..literal.find('"').unwrap_or(literal.len())];
            let longest = literal
                .split("\\n")
                .flat_map(|line| line.split('{'))
                .map(|part| part.split_once('}').map_or(part, |(_, after)| after).trim())
                .max_by_key(|part| part.len())
                .unwrap_or("");
            if longest.len() >= MIN_LEN && !found.iter().any(|f| f == longest) {
                found.push(longest.to_string());
            }
        }
    }
    found
}

/// The messages of every `.rs` file under `dir`, recursively.
pub fn in_tree(dir: &Path) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let more = if path.is_dir() {
            in_tree(&path)?
        } else if path.extension().is_some_and(|e| e == "rs") {
            in_source(&fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?)
        } else {
            continue;
        };
        for m in more {
            if !found.contains(&m) {
                found.push(m);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_fixed_part_of_each_format_string() {
        let src = r#"
            dev_warn!(
                dev.as_ref(),
                "no driver claimed it within {} s of boot: released\n",
                seconds
            );
            pr_warn!("{} was preserved but never finished\n", id);
            pr_info!("not a warning at all, whatever it says\n");
            dev_err!(dev.as_ref(), "short {}\n", x);
            pr_err!("cannot arm the claim timeout ({:?})\n", e);
        "#;
        assert_eq!(
            in_source(src),
            [
                "no driver claimed it within",
                "was preserved but never finished",
                "cannot arm the claim timeout ("
            ]
        );
    }
}
