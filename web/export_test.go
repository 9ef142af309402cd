package web

// NewAuditLog is newAuditLog for the external tests.
var NewAuditLog = newAuditLog

// WithTestUsers, TestToken and TestSession are withTestUsers, testToken and
// testSession for the external tests.
var (
	WithTestUsers = withTestUsers
	TestToken     = testToken
	TestSession   = testSession
)
