// Package recorder ingests each camera once over RTSP, cuts keyframe-aligned fMP4
// segments into a local spool, and uploads them to the store before cataloguing them.
// A supervisor owns the cameras by ID; Recorder.Apply starts, stops and restarts them
// while the rest keep recording.
package recorder
