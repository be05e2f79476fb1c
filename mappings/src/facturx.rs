//! Factur-X / ZUGFeRD: find the embedded CII XML inside a PDF/A-3.
