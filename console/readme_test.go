package console

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README shows the console as the browser test draws it
// (test/console, IOTLEDGER_UPDATE_SCREENSHOTS=1): every image it names is
// a PNG in the repository.
func TestREADMEImagesExist(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	images := regexp.MustCompile(`!\[[^\]]+\]\(([^)\s]+)\)`).FindAllSubmatch(readme, -1)
	require.NotEmpty(t, images, "the README shows no image")
	var console bool
	for _, m := range images {
		path := string(m[1])
		data, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(path)))
		require.NoError(t, err, "the README's image %s", path)
		require.True(t, bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")), "%s is not a PNG", path)
		console = console || path == "docs/img/console-device.png"
	}
	require.True(t, console, "the README shows the console's device page (docs/img/console-device.png)")
}
