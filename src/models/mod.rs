pub mod vae;
