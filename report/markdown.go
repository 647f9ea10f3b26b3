package report

import (
	"strings"
	"unicode/utf8"
)

// MarkdownTable formats a GitHub-flavoured Markdown table with the given
// header and rows, columns padded to a common width. Rows shorter than the
// widest row are padded with empty cells; '|' in cells is escaped and
// newlines are replaced by spaces. The result ends with a newline.
func MarkdownTable(header []string, rows [][]string) string {
	cols := len(header)
	for _, r := range rows {
		cols = max(cols, len(r))
	}
	if cols == 0 {
		return ""
	}
	cell := func(r []string, j int) string {
		if j >= len(r) {
			return ""
		}
		s := strings.ReplaceAll(r[j], "|", `\|`)
		return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	}
	width := make([]int, cols)
	for j := range width {
		width[j] = max(3, utf8.RuneCountInString(cell(header, j)))
		for _, r := range rows {
			width[j] = max(width[j], utf8.RuneCountInString(cell(r, j)))
		}
	}
	var b strings.Builder
	line := func(r []string) {
		b.WriteString("|")
		for j := range cols {
			c := cell(r, j)
			b.WriteString(" ")
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[j]-utf8.RuneCountInString(c)))
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString("|")
	for j := range cols {
		b.WriteString(strings.Repeat("-", width[j]+2))
		b.WriteString("|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		line(r)
	}
	return b.String()
}
