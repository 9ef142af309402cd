package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode"

	"github.com/straja-nvr/straja/storage/state"
)

// Roles, with separation of duties: guards watch, administrators review recordings
// and the audit trail, ITC staff run the system but see no video unless granted.
const (
	RoleGuard = "guard"
	RoleAdmin = "admin"
	RoleITC   = "itc"
)

// Roles lists the roles in the order they are documented.
var Roles = []string{RoleGuard, RoleAdmin, RoleITC}

// ErrBadCredentials is returned for an unknown user, a wrong password or a disabled
// user alike, so a caller cannot tell which.
var ErrBadCredentials = errors.New("wrong username or password")

// ErrNoUser is returned (wrapped) for a username that does not exist.
var ErrNoUser = errors.New("no such user")

// Targets says which sites and cameras exist, so a grant cannot name one that does not.
type Targets struct {
	Sites   []string
	Cameras []string
}

// Users manages the users in the state database.
type Users struct {
	DB      *state.State
	Hasher  *Hasher
	Targets Targets
	// Known, when set, replaces Targets: the sites and cameras that exist now, for a
	// service whose cameras change at runtime. Safe for concurrent use.
	Known func() Targets

	dummyOnce sync.Once
	dummy     string
	dummyErr  error
}

// NewUsers returns the user store on db with the default hashing parameters.
func NewUsers(db *state.State, t Targets) *Users {
	return &Users{DB: db, Hasher: NewHasher(DefaultParams, DefaultConcurrency), Targets: t}
}

// Add creates a user with one role.
func (u *Users) Add(ctx context.Context, username, role, password string) error {
	if err := CheckUsername(username); err != nil {
		return err
	}
	if err := CheckRole(role); err != nil {
		return err
	}
	return u.AddRoles(ctx, username, []string{role}, password)
}

// AddRoles creates a user holding roles (see CheckRoles).
func (u *Users) AddRoles(ctx context.Context, username string, roles []string, password string) error {
	if err := CheckUsername(username); err != nil {
		return err
	}
	roles, err := CheckRoles(roles)
	if err != nil {
		return err
	}
	if err := CheckPassword(username, password); err != nil {
		return err
	}
	hash, err := u.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	if err := u.DB.AddUserRoles(ctx, username, roles, hash); err != nil {
		if errors.Is(err, state.ErrExists) {
			return fmt.Errorf("username: %q is taken", username)
		}
		return err
	}
	return nil
}

// AddFirst creates an admin with a random password if there is no user at all, and
// returns that password; "" means users existed and nothing was done.
func (u *Users) AddFirst(ctx context.Context, username string) (string, error) {
	if n, err := u.DB.CountUsers(ctx); err != nil || n > 0 {
		return "", err
	}
	password, err := RandomPassword()
	if err != nil {
		return "", err
	}
	hash, err := u.Hasher.Hash(ctx, password)
	if err != nil {
		return "", err
	}
	// Another process may have added one since the count: the store checks again.
	added, err := u.DB.AddFirstUser(ctx, username, RoleAdmin, hash)
	if err != nil || !added {
		return "", err
	}
	return password, nil
}

// SetPassword replaces a user's password.
func (u *Users) SetPassword(ctx context.Context, username, password string) error {
	if err := CheckPassword(username, password); err != nil {
		return err
	}
	if _, err := u.user(ctx, username); err != nil {
		return err
	}
	hash, err := u.Hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	return u.DB.SetPassword(ctx, username, hash)
}

// ErrLastITC is returned (wrapped) when a change would leave no enabled itc user,
// and so nobody to manage users.
var ErrLastITC = errors.New("the last enabled itc user")

// SetRoles replaces a user's roles (see CheckRoles) and returns them as stored. It
// refuses to take itc from the last enabled itc user: nobody could manage users then.
func (u *Users) SetRoles(ctx context.Context, username string, roles []string) ([]string, error) {
	roles, err := CheckRoles(roles)
	if err != nil {
		return nil, err
	}
	if _, err := u.user(ctx, username); err != nil {
		return nil, err
	}
	err = u.DB.SetRoles(ctx, username, roles, RoleITC)
	if errors.Is(err, state.ErrLastRole) {
		return nil, fmt.Errorf("roles: %s is %w; give another user itc first, so someone can still manage users",
			username, ErrLastITC)
	}
	return roles, err
}

// SetDisabled disables or re-enables a user.
func (u *Users) SetDisabled(ctx context.Context, username string, disabled bool) error {
	if _, err := u.user(ctx, username); err != nil {
		return err
	}
	return u.DB.SetDisabled(ctx, username, disabled)
}

// Grant lets a user see a configured site's cameras or one camera.
func (u *Users) Grant(ctx context.Context, username string, g state.Grant) error {
	if err := u.checkGrant(g); err != nil {
		return err
	}
	if _, err := u.user(ctx, username); err != nil {
		return err
	}
	return u.DB.AddGrant(ctx, username, g)
}

// SetGrants replaces a user's grants; each must name a configured site or camera.
func (u *Users) SetGrants(ctx context.Context, username string, grants []state.Grant) error {
	if len(grants) > MaxGrants {
		return fmt.Errorf("grants: %d grants, at most %d allowed; grant sites rather than each camera", len(grants), MaxGrants)
	}
	for _, g := range grants {
		if err := u.checkGrant(g); err != nil {
			return err
		}
	}
	if _, err := u.user(ctx, username); err != nil {
		return err
	}
	return u.DB.SetGrants(ctx, username, grants)
}

// MaxGrants bounds one user's grants.
const MaxGrants = 1000

// CheckGrant checks that g names a configured site or camera.
func (u *Users) CheckGrant(g state.Grant) error { return u.checkGrant(g) }

// Get returns one user; a missing one is an error naming the username.
func (u *Users) Get(ctx context.Context, username string) (state.User, error) {
	return u.user(ctx, username)
}

func (u *Users) checkGrant(g state.Grant) error {
	var known []string
	t := u.Targets
	if u.Known != nil {
		t = u.Known()
	}
	switch g.Kind {
	case "site":
		known = t.Sites
	case "camera":
		known = t.Cameras
	default:
		return fmt.Errorf("grant: kind %q is neither site nor camera", g.Kind)
	}
	found := false
	for _, k := range known {
		found = found || k == g.Target
	}
	if !found {
		return fmt.Errorf("%s: %q is not a configured %s", g.Kind, g.Target, g.Kind)
	}
	return nil
}

// List returns every user, ordered by username.
func (u *Users) List(ctx context.Context) ([]state.User, error) { return u.DB.Users(ctx) }

// Authenticate returns the user whose password this is. An unknown or disabled user
// costs the same Argon2id run as a known one, so timing does not tell which usernames
// exist; all failures are ErrBadCredentials.
func (u *Users) Authenticate(ctx context.Context, username, password string) (state.User, error) {
	user, err := u.DB.User(ctx, username)
	if err != nil && !errors.Is(err, state.ErrNotFound) {
		return state.User{}, err
	}
	known := err == nil
	hash := user.PasswordHash
	if !known {
		if hash, err = u.dummyHash(ctx); err != nil {
			return state.User{}, err
		}
	}
	ok, err := u.Hasher.Verify(ctx, hash, password)
	if err != nil {
		return state.User{}, err
	}
	if !ok || !known || user.Disabled {
		return state.User{}, ErrBadCredentials
	}
	return user, nil
}

// dummyHash is a hash of a random password with the current parameters, made once.
func (u *Users) dummyHash(ctx context.Context) (string, error) {
	u.dummyOnce.Do(func() {
		var p string
		if p, u.dummyErr = RandomPassword(); u.dummyErr == nil {
			u.dummy, u.dummyErr = u.Hasher.Hash(context.WithoutCancel(ctx), p)
		}
	})
	return u.dummy, u.dummyErr
}

func (u *Users) user(ctx context.Context, username string) (state.User, error) {
	user, err := u.DB.User(ctx, username)
	if errors.Is(err, state.ErrNotFound) {
		return user, fmt.Errorf("username: no user %q: %w", username, ErrNoUser)
	}
	return user, err
}

// CheckUsername: 1..64 characters of [a-z0-9._-].
func CheckUsername(s string) error {
	if s == "" {
		return errors.New("username: must not be empty")
	}
	if len(s) > 64 {
		return fmt.Errorf("username: %d characters, at most 64 allowed", len(s))
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("username: %q has %q; use lower-case letters a-z, digits, '.', '_' and '-'", s, r)
		}
	}
	return nil
}

// CheckRole accepts guard, admin and itc.
func CheckRole(s string) error {
	for _, r := range Roles {
		if s == r {
			return nil
		}
	}
	return fmt.Errorf("role: %q is not a role; use guard, admin or itc", s)
}

// CheckRoles accepts one or more of guard, admin and itc, and returns them without
// repeats in the documented order, as they are stored.
func CheckRoles(roles []string) ([]string, error) {
	if len(roles) == 0 {
		return nil, errors.New("roles: at least one role is needed (guard, admin or itc)")
	}
	for _, r := range roles {
		if !slices.Contains(Roles, r) {
			return nil, fmt.Errorf("roles: %q is not a role; use guard, admin or itc", r)
		}
	}
	var out []string
	for _, r := range Roles {
		if slices.Contains(roles, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// CheckPassword: at least 12 characters, not the username, and not all of one kind
// (lower-case letters, upper-case letters, digits, other), which guessing tries first.
func CheckPassword(username, password string) error {
	n := len([]rune(password))
	if n < 12 {
		return fmt.Errorf("password: %d characters, at least 12 needed: longer passwords take far longer to guess", n)
	}
	if n > 1024 {
		return fmt.Errorf("password: %d characters, at most 1024 allowed", n)
	}
	if password == username {
		return errors.New("password: must not be the username, which anyone may know")
	}
	classes := map[string]bool{}
	for _, r := range password {
		switch {
		case unicode.IsLower(r):
			classes["lower"] = true
		case unicode.IsUpper(r):
			classes["upper"] = true
		case unicode.IsDigit(r):
			classes["digit"] = true
		default:
			classes["other"] = true
		}
	}
	if len(classes) < 2 {
		return errors.New("password: all characters are of one kind (only letters of one case, only digits or " +
			"only symbols), which guessing tries first; mix in another kind")
	}
	return nil
}

// passwordAlphabet leaves out look-alikes (0/O, 1/l/I) so a printed password can be typed.
const passwordAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// RandomPassword returns 20 characters from passwordAlphabet (about 116 bits) that
// CheckPassword accepts.
func RandomPassword() (string, error) {
	for {
		b := make([]byte, 20)
		for i := range b {
			b[i] = passwordAlphabet[randIntn(len(passwordAlphabet))]
		}
		if CheckPassword("", string(b)) == nil {
			return string(b), nil
		}
	}
}

func randIntn(n int) int {
	// Rejection sampling over one byte keeps the choice uniform.
	limit := 256 - 256%n
	var b [1]byte
	for {
		_, _ = rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
