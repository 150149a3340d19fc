// Package resolve turns cluster state into the facts rendering needs: which
// nodes run a LoadBalancer and at which address, which endpoints fill which
// server slots, which virtual router ID it uses, and whether it conflicts
// with another LoadBalancer. Every function is pure: the controller lists
// the objects, this package decides.
package resolve
