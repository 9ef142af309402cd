// Package spool records a camera's stream: the segmenter cuts it into keyframe-aligned
// fragmented-MP4 segments, the Spool writes them to a local directory (fsynced per
// fragment, recovered after a crash) within a byte cap, and the Uploader stores each
// closed segment and only then catalogues it.
package spool
