package synth

import "encoding/base64"

// JWT is a token with an HS256 header, a claims object and a random signature.
func JWT(g *Gen) string {
	enc := base64.RawURLEncoding
	h := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	c := enc.EncodeToString([]byte(`{"sub":"` + g.S(Digits, 10) + `","name":"` + g.S(Lower, 8) + `","iat":1516239022}`))
	return h + "." + c + "." + g.S(URLB64, 43)
}
