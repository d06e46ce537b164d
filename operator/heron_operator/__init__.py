"""The kopf operator for Heron (TrainingRun, EngineBuild, EngineRollout)."""
