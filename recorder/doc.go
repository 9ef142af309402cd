// Package recorder runs the recording side of Straja from Options that the service
// wires from its configuration: it opens the catalog and the spool, and runs one ingest
// session per camera (two with a live substream) feeding a streaming.Stream that the
// spool records and live view reads. A supervisor owns the cameras by ID;
// Recorder.Apply starts, stops and restarts them while the rest keep recording. Health
// and the store probe live here.
package recorder
