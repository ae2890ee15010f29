package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of an encryption key: AES-256.
const KeySize = 32

// sealVersion prefixes sealed values so that the format can change.
const sealVersion = 1

// keyCheck is sealed with the key in store_meta; opening it proves that the
// configured key is the one the stored passwords were sealed with.
const keyCheck = "routr-go key check"

// ParseKey decodes an encryption key setting: 64 hex digits or the
// standard (or URL-safe) base64 of 32 bytes. Surrounding space is ignored,
// so that a key file may end with a newline.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("encryption key is empty")
	}
	if len(s) == 2*KeySize {
		if k, err := hex.DecodeString(s); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("encryption key must be %d bytes as 64 hex digits or base64 (try: openssl rand -hex 32)", KeySize)
}

// NewKey returns a fresh random key, hex encoded as ParseKey reads it.
func NewKey() string {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(k)
}

// sealer seals secrets with AES-256-GCM. The associated data binds each
// sealed value to its purpose and resource ref, so that a value copied to
// another row does not open.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plaintext, ad string) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	_, _ = rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], []byte(plaintext), []byte(ad))
}

var errOpen = errors.New("cannot decrypt: wrong encryption key or corrupted data")

func (s *sealer) open(sealed []byte, ad string) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != sealVersion {
		return "", errOpen
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(ad))
	if err != nil {
		return "", errOpen
	}
	return string(pt), nil
}

// credentialsAD is the associated data of a Credentials' password.
func credentialsAD(ref string) string { return "credentials:" + ref }
