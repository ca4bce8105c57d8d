"""The chain's stages in order; each reads only its predecessors' outputs in the run folder."""

from pipeline.stages.conform import Conform
from pipeline.stages.evaluate import Evaluate
from pipeline.stages.prepare import Prepare
from pipeline.stages.report import Report
from pipeline.stages.sample import Sample
from pipeline.stages.score import Score
from pipeline.stages.select import Select

STAGES = {cls.name: cls for cls in (Prepare, Sample, Score, Select, Conform, Evaluate, Report)}
