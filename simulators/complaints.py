"""What citizens say to 12345: categories, problems (paraphrase families) and the parts a
complaint is composed of, with the departments that handle each problem.

A ticket's text is composed from parts: an opening, who is calling, where (an address phrase
from ``simulators.addresses``), when, *what* (one of its problem's paraphrases, with the
incident's fixed details such as the noise source or the employer), how long, the impact, a
story, what the caller wants and a closing (often a masked phone number). Parts are optional
and their order varies; callers make typing mistakes (homophones from pinyin input) and some
write traditional characters. The callers of one incident share its facts (problem, details,
place, time) but not their words.

A **family** is one problem (``noise.social``, ``labour.wage`` ...) with a few *facts* (what
exactly is wrong), each told in several paraphrases. :data:`HELD_OUT` is a
fixed set of 12 of the 42 families (each category keeps at least two others, so a model tuned
without them still sees problems of one category that are not one problem): runs with a
tuning seed (below :data:`FIRST_EVAL_SEED`) never use them, so an evaluation on seeds from
:data:`FIRST_EVAL_SEED` up can be restricted to families no model was tuned on.

>>> import random
>>> rng = random.Random(3)
>>> fam = FAMILIES["labour.wage"]
>>> inc = Incident.draw(rng, fam)
>>> text = compose(rng, inc, "幸福小区3栋", hour=10.0)
>>> 20 <= len(text) <= 500 and inc.slots["employer"] in text
True
>>> n_what = sum(len(p) for f in FAMILIES.values() for p in f.what)
>>> len(CATEGORIES) >= 12, len(FAMILIES) >= 30, n_what > 180
(True, True, True)
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "CATEGORIES",
    "CITY_DEPARTMENTS",
    "FAMILIES",
    "FIRST_EVAL_SEED",
    "HELD_OUT",
    "Family",
    "Incident",
    "compose",
    "departments",
    "families_for",
    "misspell",
]

#: Seeds from here up are evaluation seeds: they also draw the held-out families.
FIRST_EVAL_SEED: Final = 100

#: Category code -> Chinese name (the ``category`` field carries the code).
CATEGORIES: Final[dict[str, str]] = {
    "noise": "噪声扰民",
    "odor": "异味废气",
    "garbage": "垃圾清运",
    "traffic": "交通秩序",
    "construction": "施工扬尘",
    "water": "供水问题",
    "vending": "占道经营",
    "streetlight": "路灯故障",
    "labour": "劳动保障",
    "health": "医疗卫生",
    "education": "教育",
    "housing": "住房物业",
    "transport": "公共交通",
    "market": "市场监管",
    "power": "供电问题",
}

#: City-level departments; ``{district}城市管理局`` handles the district-level problems.
CITY_DEPARTMENTS: Final[tuple[str, ...]] = (
    "市生态环境局",
    "市公安局",
    "市公安局交警支队",
    "市住房和城乡建设局",
    "市水务集团",
    "市人力资源和社会保障局",
    "市卫生健康委员会",
    "市教育局",
    "市交通运输局",
    "市市场监督管理局",
    "国网南通供电公司",
)
_LOCAL: Final = "城市管理局"  # district-level: "{district}城市管理局"


def departments(districts: list[str]) -> list[str]:
    """Every department a ticket can be dispatched to, for these districts."""
    return [*CITY_DEPARTMENTS, *(f"{d}{_LOCAL}" for d in districts)]


@dataclass(frozen=True, slots=True)
class Family:
    """One problem: its category, department, paraphrases of *what* and detail slots."""

    code: str
    category: str
    dept: str  # a city department, or "local" for the district's 城市管理局
    #: facts, each told in several paraphrases
    what: tuple[tuple[str, ...], ...]
    slots: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: hours when people call about it (None: the day's usual rhythm)
    night: bool = False

    def department(self, district: str) -> str:
        return f"{district}{_LOCAL}" if self.dept == "local" else self.dept

    @property
    def held_out(self) -> bool:
        return self.code in HELD_OUT


_E = "市生态环境局"
_F: Final = (
    # -- noise ---------------------------------------------------------------------------------
    Family(
        "noise.social",
        "noise",
        "市公安局",
        (
            (
                "{src}的声音特别大，吵得人根本睡不着",
                "{src}太吵了，吵得整晚睡不着觉",
                "被{src}吵得睡不着，声音实在太大",
            ),
            (
                "{src}一直响到半夜，说了好几次也不听",
                "{src}天天闹到半夜，跟他们说了也没用",
                "{src}每天都搞到深夜，劝了几次根本不听",
            ),
        ),
        {"src": ("广场舞音响", "KTV唱歌", "酒吧的音乐", "商铺门口的喇叭", "楼下烧烤店喝酒划拳")},
        night=True,
    ),
    Family(
        "noise.construction",
        "noise",
        "市住房和城乡建设局",
        (
            (
                "工地{src}一直在响，晚上也不停工",
                "工地晚上还用{src}干活，一直不停",
                "夜里工地的{src}还在施工，没停过",
            ),
            (
                "工地上{src}轰隆隆的，家里玻璃都在震",
                "工地{src}震得家里窗户玻璃嗡嗡响",
                "附近工地用{src}施工，震得房子都在抖",
            ),
        ),
        {"src": ("打桩机", "挖掘机", "电锯切割", "混凝土泵车", "破碎锤")},
        night=True,
    ),
    Family(
        "noise.industry",
        "noise",
        _E,
        (
            (
                "旁边厂里{src}嗡嗡响，白天黑夜都不停",
                "厂里的{src}二十四小时嗡嗡地响",
                "附近企业{src}日夜不停地轰鸣",
            ),
            (
                "厂区{src}的声音传过来，关着窗都听得见",
                "{src}的低频噪声很大，关上窗户还是能听到",
                "工厂{src}声音太大，窗户关死了也挡不住",
            ),
        ),
        {"src": ("排风机", "冷却塔", "空压机", "风机", "生产设备")},
        night=True,
    ),
    # -- odor ----------------------------------------------------------------------------------
    Family(
        "odor.chemical",
        "odor",
        _E,
        (
            (
                "闻到一股{smell}，{feeling}",
                "空气里全是{smell}，{feeling}",
                "这边{smell}很浓，{feeling}",
            ),
            (
                "一阵一阵的{smell}飘过来，怀疑有企业偷排",
                "{smell}时有时无，估计是哪个厂偷偷排放",
                "不知道哪里排出来的{smell}，怀疑附近工厂偷排废气",
            ),
        ),
        {
            "smell": ("化工异味", "刺鼻的气味", "臭鸡蛋味", "烧塑料的味道", "油漆味"),
            "feeling": ("头晕恶心", "呛得喘不过气", "眼睛刺痛", "孩子一直咳嗽"),
        },
    ),
    Family(
        "odor.burning",
        "odor",
        _E,
        (
            (
                "有人在{where2}露天焚烧{thing}，浓烟很大",
                "{where2}有人烧{thing}，黑烟冒得老高",
                "{where2}在焚烧{thing}，烟特别大",
            ),
            (
                "天天有人在{where2}烧{thing}，烟都飘到家里来了",
                "{where2}又在烧{thing}了，整个小区都是烟味",
                "{where2}经常烧{thing}，烟味呛得家里待不住",
            ),
        ),
        {
            "where2": ("空地上", "河边", "田里", "路边"),
            "thing": ("垃圾", "秸秆", "废旧轮胎", "电线皮"),
        },
    ),
    Family(
        "odor.restaurant",
        "odor",
        "local",
        (
            (
                "楼下{shop}的油烟直接往楼上排，家里全是油烟味",
                "{shop}的油烟都排到我们楼上，屋里全是油烟",
                "{shop}油烟直排，熏得楼上住户没法开窗",
            ),
            (
                "{shop}没装油烟净化器，窗户都熏黑了",
                "{shop}没有油烟净化设备，外墙和窗户都是黑的",
                "{shop}油烟不处理直接排，窗户上一层黑油",
            ),
        ),
        {"shop": ("烧烤店", "饭店", "火锅店", "小吃店", "熟食店")},
    ),
    # -- garbage -------------------------------------------------------------------------------
    Family(
        "garbage.uncollected",
        "garbage",
        "local",
        (
            (
                "垃圾{days}天没人清运，堆成小山，臭气熏天",
                "生活垃圾{days}天没拉走了，堆得到处都是",
                "垃圾站{days}天没清理，垃圾堆成山，臭得要命",
            ),
            (
                "垃圾桶满了没人收，都溢出来了",
                "垃圾桶早就满了，垃圾溢得满地都是，环卫不来收",
                "垃圾箱满出来了也没人清，周边卫生很差",
            ),
        ),
        {"days": ("两", "三", "四五", "好几")},
    ),
    Family(
        "garbage.dumping",
        "garbage",
        "local",
        (
            (
                "有人乱倒{waste}，堆在路边影响通行",
                "路边被倾倒了大量{waste}，没人管",
                "路边堆了一大堆别人倒的{waste}",
            ),
            (
                "夜里有车偷偷来倒{waste}",
                "晚上有车专门开过来偷倒{waste}",
                "半夜有人开车来倾倒{waste}，倒完就跑",
            ),
        ),
        {"waste": ("建筑垃圾", "装修垃圾", "渣土", "旧家具")},
    ),
    # -- traffic -------------------------------------------------------------------------------
    Family(
        "traffic.signal",
        "traffic",
        "市公安局交警支队",
        (
            (
                "路口的红绿灯坏了，车辆乱抢行，很危险",
                "红绿灯不亮了，路口车子乱开，过马路很危险",
                "信号灯坏了，路口乱成一锅粥",
            ),
            (
                "路口信号灯时间设置不合理，绿灯只有几秒钟",
                "红绿灯的绿灯时间太短了，行人根本走不过去",
                "信号灯配时不合理，绿灯几秒就变，老人过不了马路",
            ),
        ),
    ),
    Family(
        "traffic.parking",
        "traffic",
        "市公安局交警支队",
        (
            (
                "路边乱停车太多，公交车都开不过去",
                "两边乱停的车把路堵了，公交车过不去",
                "违停车辆太多，路都堵死了",
            ),
            (
                "消防通道被私家车占了，出了事怎么办",
                "私家车长期占用消防通道，存在安全隐患",
                "消防通道上停满了车，消防车根本进不来",
            ),
        ),
    ),
    Family(
        "traffic.road",
        "traffic",
        "市公安局交警支队",
        (
            (
                "路面有个大坑，车子开过去都要颠一下",
                "马路上塌了个坑，晚上看不清很危险",
                "路中间坑坑洼洼，电动车摔了好几个",
            ),
            (
                "井盖丢了，路上留了个大洞",
                "路上的井盖被偷了，黑洞洞的没人管",
                "窨井盖缺失，已经有人差点掉下去",
            ),
        ),
    ),
    # -- construction --------------------------------------------------------------------------
    Family(
        "construction.dust",
        "construction",
        "市住房和城乡建设局",
        (
            (
                "工地扬尘很大，也不洒水，灰尘都飘进家里",
                "工地灰尘太大了，不洒水降尘，家里到处是灰",
                "施工现场尘土飞扬，没有降尘措施",
            ),
            (
                "工地裸土没有覆盖，一刮风满天都是灰",
                "工地的土堆没盖防尘网，风一吹全是灰",
                "裸露的土方没有覆盖，刮风扬尘严重",
            ),
        ),
    ),
    Family(
        "construction.mud",
        "construction",
        "市住房和城乡建设局",
        (
            (
                "渣土车带泥上路，路面脏得不行",
                "工地出来的渣土车把路面弄得全是泥",
                "土方车车轮带泥，满街都是泥巴",
            ),
            (
                "渣土车没有盖篷布，一路撒土",
                "渣土车不盖篷布，土一路往下掉",
                "运土的车没有覆盖，沿路撒漏",
            ),
        ),
    ),
    Family(
        "construction.hours",
        "construction",
        "市住房和城乡建设局",
        (
            (
                "工地中午也不休息，一直在浇筑混凝土",
                "工地午休时间还在施工，搅拌车一辆接一辆",
                "中午十二点工地还在干活，没有停工",
            ),
            (
                "工地大门口的围挡倒了，没人扶起来",
                "施工围挡被风吹倒，压在人行道上",
                "工地围墙塌了一段，行人只能绕着走",
            ),
        ),
    ),
    # -- water ---------------------------------------------------------------------------------
    Family(
        "water.outage",
        "water",
        "市水务集团",
        (
            (
                "突然停水了，也没有接到任何通知",
                "没有通知就停水了",
                "家里突然没水了，事先一点通知都没有",
            ),
            (
                "停水一整天了，到现在还没来水",
                "停了一天的水，现在还是没水",
                "从早上停水到现在，做饭洗澡都没办法",
            ),
        ),
    ),
    Family(
        "water.quality",
        "water",
        "市水务集团",
        (
            (
                "自来水发黄，有股怪味，不敢喝",
                "水龙头出来的水是黄的，还有怪味",
                "自来水又黄又有异味，根本不敢喝",
            ),
            (
                "水龙头放出来的水浑浊，里面还有杂质",
                "自来水很浑，里面有沉淀物",
                "自来水浑浊不清，接一杯能看到杂质",
            ),
        ),
    ),
    Family(
        "water.pipe",
        "water",
        "市水务集团",
        (
            (
                "路边的水管爆了，水一直往外冒",
                "供水管道破了，水哗哗地往外流",
                "地下水管爆裂，水冒得到处都是",
            ),
            (
                "消防栓被撞坏了，水喷得到处都是",
                "路边消防栓坏了，一直在喷水",
                "消防栓被车撞断了，水往外喷",
            ),
        ),
    ),
    # -- vending -------------------------------------------------------------------------------
    Family(
        "vending.street",
        "vending",
        "local",
        (
            (
                "有流动摊贩占道经营，把路都堵了",
                "小商贩占着人行道卖东西，行人只能走机动车道",
                "路边摆摊卖菜的太多，路都被占了",
            ),
            (
                "早市占了整条路，车根本过不去",
                "每天早上的早市把马路占满了，车开不过去",
                "早上摆摊的把整条街都占了，车辆无法通行",
            ),
        ),
    ),
    Family(
        "vending.night_market",
        "vending",
        "local",
        (
            (
                "夜市摊位占用人行道，搞到半夜",
                "晚上的大排档把人行道全占了",
                "夜宵摊每天晚上占道经营，一直到半夜",
            ),
            (
                "烧烤摊收摊以后垃圾扔一地，污水直接倒在路边",
                "夜市收摊后满地垃圾，脏水往路边倒",
                "夜宵摊走了以后地上全是垃圾和油污",
            ),
        ),
        night=True,
    ),
    # -- streetlight ---------------------------------------------------------------------------
    Family(
        "streetlight.out",
        "streetlight",
        "local",
        (
            (
                "路灯不亮好几天了，晚上黑乎乎的，不安全",
                "一排路灯都不亮，晚上走路看不见",
                "路灯坏了，晚上一片漆黑",
            ),
            (
                "路灯白天亮晚上不亮，浪费电还不起作用",
                "路灯白天一直开着，到了晚上反而灭了",
                "路灯时间错乱，白天开晚上关",
            ),
        ),
    ),
    Family(
        "streetlight.pole",
        "streetlight",
        "local",
        (
            (
                "有根路灯杆歪了，随时可能倒下来",
                "路灯杆被车撞歪了，摇摇晃晃的很危险",
                "路灯杆倾斜得厉害，怕砸到行人",
            ),
            (
                "路灯杆底部的检修门开着，里面电线露在外面",
                "路灯杆的检修口没有盖子，电线都露出来了",
                "路灯杆下面的小门掉了，里面的电线裸露",
            ),
        ),
    ),
    Family(
        "streetlight.flicker",
        "streetlight",
        "local",
        (
            (
                "路灯一闪一闪的，晃得人眼睛疼",
                "路灯忽明忽暗，一直在闪",
                "这排路灯老是闪个不停",
            ),
            (
                "路灯太暗了，跟没开一样",
                "路灯亮度太低，晚上还是看不清路",
                "路灯光线很弱，照不到路面",
            ),
        ),
    ),
    # -- labour --------------------------------------------------------------------------------
    Family(
        "labour.wage",
        "labour",
        "市人力资源和社会保障局",
        (
            (
                "在{employer}干活，老板拖欠{amount}工资不给",
                "{employer}欠我们{amount}的工资，一直拖着不发",
                "{employer}拖欠工人{amount}的工钱，到现在没结",
            ),
            (
                "{employer}老板跑了，{amount}工资要不到",
                "{employer}的老板联系不上了，欠的{amount}工资没人管",
                "{employer}老板卷钱跑路，我们{amount}的工资打了水漂",
            ),
        ),
        {
            "employer": (
                "宏达建筑公司",
                "顺发服装厂",
                "鑫源物流公司",
                "华泰装饰公司",
                "金盛电子厂",
            ),
            "amount": ("三个月", "两万多块钱", "半年", "一万八千块", "两个月"),
        },
    ),
    Family(
        "labour.contract",
        "labour",
        "市人力资源和社会保障局",
        (
            (
                "{employer}不给员工签劳动合同，也不交社保",
                "在{employer}上班两年了，没签合同也没交社保",
                "{employer}一直不跟我们签合同，社保也不缴",
            ),
            (
                "{employer}强迫员工加班，一个月只休息两天",
                "{employer}天天逼着加班，也不给加班费",
                "{employer}每天加班到晚上十点，一个月就歇两天",
            ),
        ),
        {"employer": ("恒通纺织厂", "新天地超市", "宏远机械厂", "万家物业公司", "星光酒店")},
    ),
    Family(
        "labour.injury",
        "labour",
        "市人力资源和社会保障局",
        (
            (
                "在{employer}干活受了伤，老板不给报工伤",
                "在{employer}上班时手被机器轧了，公司不认工伤",
                "{employer}的工人摔伤了，老板拒绝赔偿",
            ),
            (
                "{employer}让我们在没有防护的情况下高空作业",
                "{employer}不发劳保用品，工人都是冒险干活",
                "{employer}安全措施不到位，逼着工人冒险作业",
            ),
        ),
        {"employer": ("宏达建筑公司", "金盛电子厂", "恒通纺织厂", "鑫源物流公司")},
    ),
    # -- health --------------------------------------------------------------------------------
    Family(
        "health.hospital",
        "health",
        "市卫生健康委员会",
        (
            (
                "在{hospital}看病，医生态度很差，问两句就不耐烦",
                "{hospital}的医生态度恶劣，多问一句就发火",
                "{hospital}医生服务态度太差，对病人爱理不理",
            ),
            (
                "{hospital}挂号排了三个小时，窗口只开一个",
                "{hospital}排队挂号要几个小时，只开一个窗口",
                "在{hospital}挂个号等了大半天，窗口太少",
            ),
        ),
        {"hospital": ("市第一人民医院", "中医院", "妇幼保健院", "社区卫生服务中心")},
    ),
    Family(
        "health.clinic",
        "health",
        "市卫生健康委员会",
        (
            (
                "有个没有资质的小诊所在给人打针挂水",
                "附近有人无证行医，还给小孩打针",
                "一家黑诊所没有执照就给人输液",
            ),
            (
                "诊所用过的针头随便扔在垃圾桶里",
                "小诊所把用过的针管和医疗废物乱扔",
                "诊所的医疗垃圾直接丢在生活垃圾桶",
            ),
        ),
    ),
    # -- education -----------------------------------------------------------------------------
    Family(
        "education.fees",
        "education",
        "市教育局",
        (
            (
                "{school}乱收费，开学又要交{fee}",
                "{school}巧立名目收{fee}，家长意见很大",
                "{school}变相收取{fee}，还不给收据",
            ),
            (
                "{school}强制学生买{fee}，不买不行",
                "{school}要求每个学生必须交{fee}，不交就为难孩子",
                "{school}硬性摊派{fee}，家长没有选择",
            ),
        ),
        {
            "school": ("实验小学", "第二中学", "城南小学", "育才初中"),
            "fee": ("资料费", "校服费", "课后服务费", "赞助费"),
        },
    ),
    Family(
        "education.tutoring",
        "education",
        "市教育局",
        (
            (
                "{school}的老师在外面办补习班，暗示学生必须参加",
                "{school}老师私下开补习班，不去上课就给脸色",
                "{school}有老师有偿补课，变相逼学生参加",
            ),
            (
                "培训机构收了一年的学费，现在关门跑路了",
                "交了一年学费的培训班突然关门，老板跑了",
                "校外培训机构卷走学费跑路，钱退不回来",
            ),
        ),
        {"school": ("实验小学", "第二中学", "城南小学", "育才初中")},
    ),
    Family(
        "education.safety",
        "education",
        "市教育局",
        (
            (
                "{school}门口放学时车辆太乱，孩子过马路很危险",
                "{school}放学的时候门口堵成一团，学生很不安全",
                "{school}门前接送车辆乱停，孩子差点被撞",
            ),
            (
                "{school}食堂的饭菜不卫生，孩子吃了肚子疼",
                "{school}食堂饭菜有异物，家长很担心",
                "{school}学生餐质量太差，孩子回家说吃不饱",
            ),
        ),
        {"school": ("实验小学", "第二中学", "城南小学", "育才初中")},
    ),
    # -- housing -------------------------------------------------------------------------------
    Family(
        "housing.property",
        "housing",
        "市住房和城乡建设局",
        (
            (
                "物业不作为，电梯坏了半个月没人修",
                "电梯坏了好久，物业一直拖着不修",
                "电梯三天两头坏，物业也不管",
            ),
            (
                "物业费年年涨，服务越来越差",
                "物业收费一直涨，服务质量却越来越差",
                "物业费涨了服务反而更差，楼道都没人打扫",
            ),
        ),
    ),
    Family(
        "housing.leak",
        "housing",
        "市住房和城乡建设局",
        (
            (
                "楼上漏水，我家天花板都泡烂了，找物业也不管",
                "楼上往下渗水，我家吊顶全泡坏了",
                "楼上家漏水漏到我家，屋顶都发霉了",
            ),
            (
                "楼顶防水坏了，一下雨家里就漏",
                "顶楼防水层破了，下雨天屋里漏水",
                "屋顶漏雨，一下雨家里就得拿盆接水",
            ),
        ),
    ),
    Family(
        "housing.illegal",
        "housing",
        "local",
        (
            (
                "一楼住户私自搭建阳光房，占用公共绿地",
                "底楼有人私搭阳光房，把绿化带都占了",
                "一楼违规搭了个阳光房，圈占公共绿地",
            ),
            (
                "有人在楼顶违章搭建，说了也不拆",
                "楼顶上有人私自加盖房子，一直不拆",
                "顶楼住户在屋顶违建，存在安全隐患",
            ),
        ),
    ),
    # -- transport -----------------------------------------------------------------------------
    Family(
        "transport.bus",
        "transport",
        "市交通运输局",
        (
            (
                "{line}公交车经常不按时发车，一等就是四十分钟",
                "{line}公交班次太少，经常等半个多小时",
                "{line}公交车不准点，一等就是大半天",
            ),
            (
                "{line}公交甩站，站台上有人招手也不停",
                "{line}公交车经常过站不停，有人等也直接开走",
                "{line}公交司机甩客，看到人也不停车",
            ),
        ),
        {"line": ("6路", "12路", "28路", "33路", "101路")},
    ),
    Family(
        "transport.taxi",
        "transport",
        "市交通运输局",
        (
            (
                "出租车拒载，说不顺路就不拉",
                "出租车司机挑客拒载，说不顺路",
                "打车遇到拒载，司机嫌路近不肯走",
            ),
            (
                "出租车司机故意绕路，多收了二十多块钱",
                "出租车绕远路，车费多了二十多",
                "司机故意绕路多收钱，平时十几块这次要四十",
            ),
        ),
    ),
    Family(
        "transport.stop",
        "transport",
        "市交通运输局",
        (
            (
                "公交站台的候车亭坏了，下雨天没地方躲",
                "公交站的遮雨棚塌了，一直没修",
                "公交候车亭玻璃碎了一地，很危险",
            ),
            (
                "公交站牌上的线路信息是错的，很多人坐错车",
                "站牌没有更新，上面的线路早就改了",
                "公交站牌信息过时，外地人看了坐错车",
            ),
        ),
    ),
    # -- market --------------------------------------------------------------------------------
    Family(
        "market.food",
        "market",
        "市市场监督管理局",
        (
            (
                "在{shop}买的{food}过期了，还在架子上卖",
                "{shop}卖过期的{food}",
                "{shop}货架上的{food}早就过期了还在卖",
            ),
            (
                "{shop}的{food}变质发霉了，吃了拉肚子",
                "在{shop}买的{food}是坏的，家里人吃了肚子疼",
                "{shop}卖的{food}有问题，吃完上吐下泻",
            ),
        ),
        {
            "shop": ("超市", "便利店", "小饭店", "菜场摊位"),
            "food": ("牛奶", "熟食", "面包", "猪肉"),
        },
    ),
    Family(
        "market.prepaid",
        "market",
        "市市场监督管理局",
        (
            (
                "{store}突然关门了，卡里还有{money}没用完",
                "{store}倒闭了，办的卡里还剩{money}",
                "{store}说关就关，卡里的{money}退不了",
            ),
            (
                "{store}诱导办卡充了{money}，现在不给退",
                "{store}忽悠我充值{money}，想退卡不给退",
                "在{store}被推销充了{money}，现在要退钱不退",
            ),
        ),
        {
            "store": ("健身房", "理发店", "洗车店", "美容院"),
            "money": ("两千多", "三千块", "五千元", "一千五"),
        },
    ),
    Family(
        "market.scale",
        "market",
        "市市场监督管理局",
        (
            (
                "{stall}的秤有问题，一斤少了二两",
                "在{stall}买东西缺斤短两",
                "{stall}用的是鬼秤，称出来的分量不够",
            ),
            (
                "{stall}明码标价和结账价格不一样，多收钱",
                "{stall}标价一套收钱一套",
                "{stall}结账时偷偷加价，跟标签上的不一样",
            ),
        ),
        {"stall": ("菜场摊位", "水果店", "超市", "海鲜摊")},
    ),
    # -- power ---------------------------------------------------------------------------------
    Family(
        "power.outage",
        "power",
        "国网南通供电公司",
        (
            (
                "突然停电了，冰箱里的东西都要坏了",
                "没有通知就停电了，冰箱里的菜都坏了",
                "整个小区停电，到现在还没来电",
            ),
            (
                "电压不稳，灯一闪一闪的，电器都烧坏了",
                "电压忽高忽低，家里电视都烧了",
                "电压不稳定，灯一直闪，烧坏了好几样电器",
            ),
        ),
    ),
    Family(
        "power.line",
        "power",
        "国网南通供电公司",
        (
            (
                "电线杆上的电线垂下来了，离地面很近，很危险",
                "电线耷拉下来快碰到地面了",
                "高压线垂得很低，人都能碰到",
            ),
            (
                "变压器一直嗡嗡响，还冒火花",
                "路边变压器在冒火花，声音很响",
                "变压器噼里啪啦打火，很吓人",
            ),
        ),
    ),
    Family(
        "power.meter",
        "power",
        "国网南通供电公司",
        (
            (
                "这个月电费突然翻倍，怀疑电表有问题",
                "电费比平时高了一倍多，电表是不是坏了",
                "家里没多用电，电费却多了好几百",
            ),
            (
                "交了电费还是被停电了",
                "电费已经缴了，第二天还是给我断电",
                "明明交过电费，供电公司还是拉闸",
            ),
        ),
    ),
)

#: Every family by code.
FAMILIES: Final[dict[str, Family]] = {f.code: f for f in _F}


def _held_out() -> frozenset[str]:
    """A fixed set of families (by hash): one of each category with three, none of the rest."""
    out: set[str] = set()
    for cat in CATEGORIES:
        fams = sorted(f.code for f in _F if f.category == cat)
        scored = sorted(fams, key=lambda c: hashlib.blake2b(c.encode(), digest_size=4).digest())
        k = len(fams) // 3
        out.update(scored[:k])
    return frozenset(out)


HELD_OUT: Final[frozenset[str]] = _held_out()


def families_for(seed: int) -> list[Family]:
    """The families a run with ``seed`` draws from: tuning seeds never see held-out ones."""
    if seed >= FIRST_EVAL_SEED:
        return list(_F)
    return [f for f in _F if f.code not in HELD_OUT]


@dataclass(frozen=True, slots=True)
class Incident:
    """One concrete problem: its family and the details every caller about it shares."""

    family: Family
    slots: dict[str, str]
    #: how long it has been going on (callers round it differently)
    duration: int
    #: which of the family's facts this incident is (its callers paraphrase it)
    fact: int = 0

    @classmethod
    def draw(cls, rng: random.Random, family: Family) -> Incident:
        slots = {k: rng.choice(v) for k, v in sorted(family.slots.items())}
        fact = rng.randrange(len(family.what))
        return cls(family, slots, rng.randrange(len(_DURATION)), fact)


# -- parts ------------------------------------------------------------------------------------

_OPENING: Final = (
    "",
    "",
    "你好，",
    "您好，",
    "喂，你好，我要反映个事情，",
    "我想投诉一下，",
    "我要反映一个问题，",
    "市民来电反映：",
    "来电人称，",
    "网友留言：",
    "麻烦问一下，",
    "领导你好，",
)
_WHO: Final = (
    "",
    "",
    "我是这边的居民，",
    "我家就住在附近，",
    "我们是这里的业主，",
    "我是在这上班的，",
    "我是外地来这打工的，",
    "家里有老人和小孩，",
    "我是退休老师，",
)
_PLACE_FORMS: Final = (
    "{place}{what}",
    "在{place}这边，{what}",
    "{place}那里{what}",
    "{what}，地址在{place}",
    "{place}附近{what}",
    "我们{place}{what}",
)
_WHEN_DAY: Final = ("最近", "这几天", "从上个礼拜开始", "今天早上", "这段时间", "这两天", "")
_WHEN_NIGHT: Final = ("每天晚上", "昨天晚上", "一到晚上", "半夜", "晚上十点以后", "凌晨")
_DURATION: Final = (
    "",
    "已经一个多星期了",
    "持续好几天了",
    "有半个多月了",
    "好几个月了",
    "不是一天两天了",
    "从上个月就开始了",
)
_IMPACT: Final = (
    "",
    "",
    "严重影响我们的正常生活",
    "老人小孩都受不了",
    "大家意见都很大",
    "实在是没办法了",
    "真的是太过分了",
)
_STORY: Final = (
    "之前已经打过两次电话了，到现在也没人来。",
    "找过物业，物业说不归他们管。",
    "问了社区，社区让我们打12345。",
    "上次反映过以后好了两天，现在又开始了。",
    "附近很多居民都有意见，只是没人出头。",
    "我们自己去说过，对方态度很差，还骂人。",
    "我在网上也发过帖子，一直没有回音。",
    "这个问题拖了这么久，希望这次能真正解决，不要又是回个电话就结束了。",
)
_WANT: Final = (
    "希望有关部门尽快处理",
    "请派人来看一下",
    "麻烦管一管",
    "要求给个说法",
    "希望尽快解决",
    "请相关部门核实处理",
    "能不能来人看看",
    "请尽快安排人员处理",
    "希望能彻底解决，不要每次都是应付",
    "请给我回个电话",
)
_CLOSING: Final = (
    "",
    "",
    "谢谢。",
    "谢谢！麻烦了。",
    "联系电话{phone}。",
    "我的电话是{phone}，可以回电。",
)
_FILLER: Final = ("", "", "", "那个，", "就是说，", "反正", "真的是", "哎，")

#: Pinyin-input slips callers typing online make (right -> wrong).
HOMOPHONES: Final[tuple[tuple[str, str], ...]] = (
    ("已经", "以经"),
    ("反映", "反应"),
    ("垃圾", "拉圾"),
    ("噪声", "燥声"),
    ("根本", "跟本"),
    ("在", "再"),
    ("的", "得"),
    ("做", "作"),
    ("厉害", "利害"),
    ("处理", "处里"),
    ("一直", "一值"),
    ("那里", "哪里"),
    ("影响", "映响"),
    ("安排", "按排"),
    ("清理", "清里"),
)


def phone(rng: random.Random) -> str:
    """A masked mobile number as the platform shows it (138****1234)."""
    return f"1{rng.choice('3578')}{rng.randrange(10)}****{rng.randrange(10_000):04d}"


def misspell(rng: random.Random, text: str, n: int = 1) -> str:
    """``n`` homophone slips (where a word that can be mistyped occurs)."""
    for _ in range(n):
        cands = [(a, b) for a, b in HOMOPHONES if a in text]
        if not cands:
            break
        a, b = rng.choice(cands)
        idx = [i for i in range(len(text)) if text.startswith(a, i)]
        i = rng.choice(idx)
        text = text[:i] + b + text[i + len(a) :]
    return text


def compose(rng: random.Random, incident: Incident, place: str, hour: float) -> str:
    """One caller's complaint about ``incident`` at ``place`` (20-500 characters)."""
    fam = incident.family
    what = rng.choice(fam.what[incident.fact]).format(**incident.slots)
    night = fam.night and (hour >= 20.0 or hour < 6.0 or rng.random() < 0.5)
    when = rng.choice(_WHEN_NIGHT if night else _WHEN_DAY)
    if when:
        what = f"{when}{what}"
    body = rng.choice(_PLACE_FORMS).format(place=place, what=what)
    parts = [rng.choice(_OPENING), rng.choice(_WHO), rng.choice(_FILLER), body]
    dur = _DURATION[incident.duration] if rng.random() < 0.7 else rng.choice(_DURATION)
    tail = [x for x in (dur, rng.choice(_IMPACT)) if x]
    text = "".join(parts) + ("，" + "，".join(tail) if tail else "") + "。"
    if rng.random() < 0.25:
        text += "".join(rng.sample(_STORY, rng.choice((1, 1, 2, 3))))
    text += rng.choice(_WANT) + rng.choice(("。", "！", "，谢谢。"))
    text += rng.choice(_CLOSING).format(phone=phone(rng))
    if len(text) < 20:
        text += "情况属实，请尽快处理。"
    return text[:500]
