//! Finding the series a PromQL expression selects, without a PromQL parser: enough for the
//! alert rules' expressions, and tested on one that has every construct they use.

/// The vector selectors of a PromQL expression (`name` or `name{matchers}`): identifiers that
/// are not functions, keywords, label lists of by/on/..., numbers, durations or strings.
pub fn selectors(expr: &str) -> Vec<String> {
    const KEYWORDS: [&str; 13] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    ];
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let skip_to = |mut i: usize, close: char| {
        while i < chars.len() && chars[i] != close {
            if chars[i] == '"' {
                i += 1;
                while chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i
    };
    let next_non_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            i = skip_to(i + 1, '"') + 1;
        } else if c == '[' {
            i = skip_to(i, ']') + 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let after = next_non_space(i);
            let next = chars.get(after).copied();
            if AGGREGATIONS.contains(&name.as_str()) {
                // `sum by (x) (...)`: the clause comes next, then the parenthesis.
            } else if KEYWORDS.contains(&name.as_str()) {
                if next == Some('(') {
                    i = skip_to(after, ')') + 1;
                }
            } else if next == Some('{') {
                let end = skip_to(after, '}');
                out.push(
                    chars[start..=end]
                        .iter()
                        .collect::<String>()
                        .replace(' ', ""),
                );
                i = end + 1;
            } else if next != Some('(') {
                out.push(name);
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn selector_extraction() {
    let expr =
        "histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{op=~\"x.*\", le!=\"1\"}[5m]))) \
                > 0.05 and on (job) (b / ignoring (x) group_left c) or deriv(d[1h]) * 3600 > 1e9";
    assert_eq!(
        selectors(expr),
        ["a_bucket{op=~\"x.*\",le!=\"1\"}", "b", "c", "d"]
    );
}
