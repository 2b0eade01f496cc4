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
        let layout = Layout::measure(&self.header, self.rows.iter().map(Vec::as_slice));
        let mut out = String::new();
        for row in [&self.header].into_iter().chain(&self.rows) {
            out.push_str(&layout.line(indent, row));
        }
        out
    }
}

/// Column widths and alignments, measured over all rows; lets a caller print rows one at a
/// time (measuring in a first pass, formatting in a second) instead of keeping them.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    widths: Vec<usize>,
    numeric: Vec<bool>,
    rows: usize,
}

impl Layout {
    /// A layout for `header`, with no rows measured yet.
    pub fn new(header: &[String]) -> Layout {
        let mut l = Layout::default();
        l.widen(header, false);
        l
    }

    /// Measures `header` and `rows`. A column is numeric (right-aligned) when every body cell
    /// is a number (or empty), and there is at least one row.
    pub fn measure<'r>(header: &[String], rows: impl IntoIterator<Item = &'r [String]>) -> Layout {
        let mut l = Layout::new(header);
        for row in rows {
            l.add(row);
        }
        l
    }

    /// Measures one more body row.
    pub fn add(&mut self, row: &[String]) {
        self.rows += 1;
        self.widen(row, true);
    }

    fn widen(&mut self, row: &[String], body: bool) {
        if row.len() > self.widths.len() {
            self.widths.resize(row.len(), 0);
            self.numeric.resize(row.len(), true);
        }
        for (c, s) in row.iter().enumerate() {
            self.widths[c] = self.widths[c].max(s.chars().count());
            if body && !s.is_empty() && s.parse::<f64>().is_err() {
                self.numeric[c] = false;
            }
        }
    }

    /// One row as a line (with its newline), starting with `indent`.
    pub fn line(&self, indent: &str, row: &[String]) -> String {
        let mut line = String::from(indent);
        for (c, &width) in self.widths.iter().enumerate() {
            let s = row.get(c).map(String::as_str).unwrap_or("");
            let pad = width.saturating_sub(s.chars().count());
            if c > 0 {
                line.push_str("  ");
            }
            if self.rows > 0 && self.numeric[c] {
                line.push_str(&" ".repeat(pad));
                line.push_str(s);
            } else {
                line.push_str(s);
                line.push_str(&" ".repeat(pad));
            }
        }
        let mut out = line.trim_end().to_string();
        out.push('\n');
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

    #[test]
    fn a_layout_prints_rows_one_at_a_time_like_the_table() {
        let header: Vec<String> = ["n", "name"].map(String::from).to_vec();
        let rows: Vec<Vec<String>> = vec![
            ["5".into(), "x".into()].to_vec(),
            ["123".into(), "longer".into(), "extra".into()].to_vec(),
        ];
        let l = Layout::measure(&header, rows.iter().map(Vec::as_slice));
        assert_eq!(l.line("", &header), "  n  name\n");
        assert_eq!(l.line("", &rows[0]), "  5  x\n");
        assert_eq!(l.line("", &rows[1]), "123  longer  extra\n");
        // A table with only a header has no numeric column.
        let t = Table::new(["a", "b"]);
        assert_eq!(t.render("> "), "> a  b\n");
    }
}
