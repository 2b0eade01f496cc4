//! Plain-text tables: a header row and aligned columns (numbers right-aligned).

/// A table of text cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are empty).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Number of rows (without the header).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Renders the table, each line starting with `indent`.
    pub fn render(&self, indent: &str) -> String {
        let ncols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let cell = |row: &[String], c: usize| row.get(c).cloned().unwrap_or_default();
        let widths: Vec<usize> = (0..ncols)
            .map(|c| {
                self.rows
                    .iter()
                    .chain([&self.header])
                    .map(|r| cell(r, c).chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // A column is numeric when every body cell is a number (or empty).
        let numeric: Vec<bool> = (0..ncols)
            .map(|c| {
                !self.rows.is_empty()
                    && self.rows.iter().all(|r| {
                        let s = cell(r, c);
                        s.is_empty() || s.parse::<f64>().is_ok()
                    })
            })
            .collect();
        let mut out = String::new();
        for row in [&self.header].into_iter().chain(&self.rows) {
            let mut line = String::from(indent);
            for c in 0..ncols {
                let s = cell(row, c);
                let pad = widths[c] - s.chars().count();
                if c > 0 {
                    line.push_str("  ");
                }
                if numeric[c] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(&s);
                } else {
                    line.push_str(&s);
                    line.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_align_right_text_left() {
        let mut t = Table::new(["key", "name", "cpu0"]);
        t.row(["0", "a", "1000"]);
        t.row(["10", "bcd", "7"]);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t.render(""),
            "key  name  cpu0\n  0  a     1000\n 10  bcd      7\n"
        );
    }
}
