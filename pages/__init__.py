"""Concord's own server-rendered pages: sign-in, invitations, the annotator's work page, the quality dashboard."""
