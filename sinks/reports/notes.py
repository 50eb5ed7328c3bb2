"""How each number of a report is computed, in the words the report shows (Chinese).

Every key figure, table and figure names the notes that explain it; the page lists those
notes at its end (口径说明) and links each number to its note. docs/reports.md has the same
ids with the English description; a test checks that both name the same ids.
"""

from __future__ import annotations

from typing import Final

__all__ = ["GENERAL", "NOTES"]

#: Shown once, above the notes: what holds for every number.
GENERAL: Final[tuple[str, ...]] = (
    "统计周期按北京时间（UTC+8，可由 report_utc_offset_h 设置）的自然日、自然周（周一至周日）或"
    "自然月划分，为左闭右开区间；“上期”为紧邻的前一个同类周期。",
    "“变化”为本期减上期：计数给出差值及相对变化（上期为0时只给差值），比率给出百分点差。",
    "告警计数只计本期内开始的告警（首次触发时间在本期内）；时长只计落在本期内的部分，"
    "尚未解除的告警计到报告的数据时间为止。",
    "数据时间：流处理已处理到的最新事件时间（cw:counts 的 watermark_ms）与审计流最新动作时间"
    "中的较晚者；周期未结束时报告为截至该时间的部分数据。",
)

NOTES: Final[dict[str, str]] = {
    # air
    "aqi_mean": "平均AQI：本期内各站点逐小时AQI（空气模型 air.hourly 观测，HJ 633-2012 小时"
    "标准，每个站点每个完整整点小时一条）的算术平均；区县平均只取该区县的站点。",
    "aqi_max": "最高小时AQI：本期内该区县任一站点的最高小时AQI。",
    "good_share": "优良小时占比：AQI≤100（优、良）的站点小时数 ÷ 有AQI的站点小时数。",
    "polluted_hours": "全市污染小时数：全市小时AQI（下注）大于100的小时数。",
    "city_hour_aqi": "全市（区县）小时AQI：该小时有数据的各站点小时AQI的算术平均，"
    "按平均值归入AQI类别。注意：国家发布口径先平均浓度再计算AQI，两者可能略有差异。",
    "primary": "主要首要污染物：本期该区县站点小时中作为首要污染物（IAQI最大且AQI>50）出现"
    "次数最多的污染物。",
    "category_hours": "各AQI类别小时数：按区县小时AQI（各站点小时AQI的平均）归类后计数；"
    "“有数据小时”为至少一个站点有AQI的小时数。",
    "episodes": "区域污染过程：与本期有重叠的 air.episode 告警（某区县多数健康站点同时升高）；"
    "同一区县一次连续的告警计为一次过程。",
    "episode_hours": "污染过程累计小时：各次过程落在本期内的时长之和。",
    "faulty": "故障站点：本期内有 air.stuck（数据恒定）、air.range（超量程/倒挂）或 "
    "air.drift（相对周边漂移）告警的站点数。",
    "fault_duration": "故障时长：该站点各故障告警落在本期内的时长之和；“最长一次”为单次告警在"
    "本期内的最长时长。同一时间的两类故障分别计时。",
    "alerts_started": "告警数：本期内开始的该规则告警（每次连续过程计一次，级别升级不重复计）。",
    # hazmat
    "dwell_alerts": "异常停留告警：本期内开始的 vehicle.dwell 告警（危化品车辆在学校、医院、"
    "居民区、水源地附近或未登记地点停留超过阈值）。",
    "dwell_vehicles": "涉及车辆：本期异常停留告警涉及的不同车辆数。",
    "repeat_vehicles": "重复停留车辆：本期内有2次及以上异常停留告警的车辆。",
    "dwell_hours": "停留时长：告警证据中的停留时长（dwell_s，告警最后一版时的值）之和。",
    "hotspot": "热点：按告警证据中的参照地点（敏感区或登记地点编号）汇总，无参照时按网格；"
    "“场景”为该地点最常见的停留场景。",
    "workshops": "疑似作坊候选点：与本期有重叠的 vehicle.workshop 告警（多辆车在同一未登记地点"
    "反复停留）；证据为告警最后一版中的车辆数、停留次数、累计停留、首末次时间和车辆编号。",
    # worksites
    "resumptions": "疑似复工：本期内开始的 worksite.resumption 告警（停工令有效期间视频或用电"
    "显示施工）。",
    "resumption_sites": "涉及工地：本期疑似复工告警涉及的不同工地数。",
    "resumption_night": "夜间：告警证据 night 为真（当地时间夜间施工时段）的告警数。",
    "resumption_complaints": "投诉佐证：告警证据中附近同期施工类投诉件数（complaints）大于0的"
    "告警数。",
    "resumption_duration": "本期内持续：该工地各次告警落在本期内的时长之和。",
    # hotline
    "tickets": "工单量：本期内受理（事件时间在本期内）的12345工单数，同一工单号只计一次"
    "（cw:tickets）；日均 = 工单量 ÷ 周期天数。",
    "category_share": "占比：该类别工单数 ÷ 本期工单总数。",
    "surges": "诉求激增：本期内开始的 hotline.surge 告警：某区县某类诉求在窗口内件数显著高于"
    "常态（泊松检验p值）；常态期望为该窗口长度内的历史平均件数。",
    "duplicates": "重复诉求合并：本期内开始的 hotline.duplicate 告警，每组为指向同一问题的多件"
    "工单；“被合并的重复工单” = 各组件数减1之和（每组保留一件主工单）。",
    "top_addresses": "高频地址：工单中的文字地址（无文字地址时用网格编号）按出现次数排序，"
    "只列出现2次及以上的。",
    "town_of_ticket": "镇街：按工单坐标在登记数据（镇街、网格）中定位；无坐标时按网格编号；"
    "都没有则为“未定位”。",
    # water
    "water_events": "水质突变：本期内开始的 water.event 告警（监测点多项指标同时偏离各自基线，"
    "或一项指标大幅偏离数分钟：污染、处理工艺故障等）。",
    "water_breaches": "水质超标：本期内开始的 water.range 告警（某指标连续多次超出限值，默认"
    "GB 5749-2022；或超出仪表量程）。",
    "water_stations": "涉及水质监测点：本期水质突变或超标告警涉及的不同监测点数（不含仪表卡滞）。",
    "water_stuck": "仪表卡滞：本期内开始的 water.stuck 告警（某指标长时间重复同一读数，远超该"
    "指标平时的重复长度）。",
    "water_duration": "本期内持续：该监测点各次水质突变与超标告警落在本期内的时长之和。",
    # effectiveness
    "cycle": "派单（派发轮次）：一次派发给一个部门即一轮；退回后改派、重开后再派各算新的一轮。"
    "按派发时间归入周期，结果跟踪到报告的数据时间。",
    "signoff": "签收用时：派发到签收的时间；中位数与P90（最近秩法：至少90%的轮次不超过该值）。",
    "handling": "办理用时：签收到首次反馈的时间的中位数。",
    "rejection": "退回率：被部门退回的轮次 ÷（签收轮次 + 退回轮次）。",
    "rework": "返工率：反馈后又被退回重办的轮次 ÷ 有反馈的轮次。",
    "overdue": "超时率：超时轮次 ÷ 派发轮次；超时指系统升级过，或签收/退回/反馈晚于期限，"
    "或到数据时间仍在期限外等待（签收期限 signoff_deadline_s，办理期限 handling_deadline_s）。",
    "closure": "办结率：已办结轮次 ÷ 派发轮次（到数据时间为止）。",
    "reopen": "重开率：办结后又被重新打开（问题复发）的轮次 ÷ 已办结轮次；搁置到期自动重开不计。",
    "score": "综合得分（0-100）：按时率（1-超时率）×30、办结率×25、（1-退回率）×15、"
    "（1-返工率）×15、（1-重开率）×15 的加权平均，无分母的项不计入并按其余权重归一；"
    "派单少于5轮的部门不参与排名。名次相同得分时派单多者在前。",
    "tier": "层级：派单记录所属指挥中心的层级（市、县区、镇街）；记录中没有时按告警规则的默认"
    "层级（热线、工地归镇街，车辆、空气、水归县区，区域污染过程和多源事件归市）和告警所在"
    "区县、镇街确定指挥中心。",
}
