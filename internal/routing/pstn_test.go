package routing

import "testing"

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"John Doe":       `"John Doe"`,
		"José":           `"José"`,
		`say "hi" \ bye`: `"say \"hi\" \\ bye"`,
		"bell\a\r\n":     `"bell"`,
		"":               `""`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
