package main

import (
	"log"
	"net/url"
)

// mustURL is the listen address with the credentials the simulator's session manager checks.
func mustURL(listen, user, password string) *url.URL {
	u, err := url.Parse("https://" + listen + "/sdk")
	if err != nil {
		log.Fatalf("listen address %q: %v", listen, err)
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u
}
