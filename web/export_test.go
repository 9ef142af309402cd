package web

// NewAuditLog is newAuditLog for the external tests.
var NewAuditLog = newAuditLog
