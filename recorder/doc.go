// Package recorder ingests each camera once over RTSP, cuts keyframe-aligned fMP4
// segments into a local spool, and uploads them to the store before cataloguing them.
package recorder
