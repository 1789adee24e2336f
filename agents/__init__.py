"""The four VOC agents (归因, 溯源, 分析, 应用) chained in a LangGraph graph."""
